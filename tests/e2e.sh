#!/usr/bin/env bash
# End-to-end checks of the ctrain command line. Usage:
#   e2e.sh CTRAIN SOURCE_DIR CASE
# Each case trains or runs a real command and asserts on its output and exit
# code; it prints "1 passed, 0 failed" or the failure and exits non-zero.
set -u
ctrain=$1 src=$2 case=$3
work=$(mktemp -d /tmp/ct_e2e.XXXXXX)
trap 'rm -rf "$work"' EXIT
fails=0 passes=0

pass() { passes=$((passes + 1)); }
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

# metric NAME LINE -> the value after "NAME: " on the line
metric() { sed -n "s/.* $1: \([0-9.e+-]*\).*/\1/p" <<<"$2" | head -1; }
# at_least / at_most VALUE BOUND
at_least() { awk -v v="$1" -v b="$2" 'BEGIN { exit !(v != "" && v + 0 >= b + 0) }'; }
at_most() { awk -v v="$1" -v b="$2" 'BEGIN { exit !(v != "" && v + 0 <= b + 0) }'; }

expect_exit() { # CODE SUBSTRING CMD...
  local code=$1 sub=$2; shift 2
  local err rc
  err=$("$@" 2>&1 >/dev/null); rc=$?
  if [ "$rc" -ne "$code" ]; then fail "$* exited $rc, expected $code ($err)"; return; fi
  if ! grep -qF -- "$sub" <<<"$err"; then fail "$*: stderr lacks '$sub': $err"; return; fi
  pass
}

case $case in
breast_cancer)
  out=$("$ctrain" "$src/examples/breast_cancer.conf" --verbose 0 --set train.save_model="$work/bc.h5") || fail "train exited $?"
  test_line=$(grep '^Test:' <<<"$out")
  acc=$(metric accuracy "$test_line")
  echo "$test_line"
  at_least "$acc" 0.93 && pass || fail "breast_cancer test accuracy $acc < 0.93"
  # The saved model evaluates to the same line, and predicts one row per sample.
  again=$("$ctrain" evaluate "$work/bc.h5") || fail "evaluate exited $?"
  [ "$again" = "$test_line" ] && pass || fail "evaluate from the model file: '$again' != '$test_line'"
  "$ctrain" predict "$work/bc.h5" --input "$src/examples/data/breast_cancer.csv" --output "$work/p.csv" || fail "predict exited $?"
  [ "$(wc -l <"$work/p.csv")" -eq 569 ] && pass || fail "predict wrote $(wc -l <"$work/p.csv") rows, expected 569"
  awk -F, '{ if ($1 < 0 || $1 > 1 || NF != 1) bad = 1 } END { exit bad }' "$work/p.csv" && pass || fail "predictions are not probabilities"
  "$ctrain" dump-weights "$work/bc.h5" --output "$work/w.txt" || fail "dump-weights exited $?"
  grep -q '^dense/dense/kernel:0 shape (30, 32)$' "$work/w.txt" && pass || fail "dump lacks dense/dense/kernel:0 shape (30, 32)"
  [ "$(grep -c ' shape ' "$work/w.txt")" -eq 6 ] && pass || fail "dump does not list 6 variables"
  ;;
boston_housing)
  out=$("$ctrain" "$src/examples/boston_housing.conf" --verbose 0) || fail "train exited $?"
  test_line=$(grep '^Test:' <<<"$out")
  mse=$(metric loss "$test_line")
  echo "$test_line"
  at_most "$mse" 25 && pass || fail "boston_housing test MSE $mse > 25"
  ;;
fashion_mnist)
  out=$("$ctrain" "$src/examples/fashion_mnist.conf" --verbose 2 --set train.save_model="$work/fm.h5") || fail "train exited $?"
  echo "$out" | tail -3
  epochs=$(grep -c '^1875/1875 \[==============================\] - ' <<<"$out")
  [ "$epochs" -eq 5 ] && pass || fail "expected 5 epoch lines, got $epochs"
  acc=$(metric accuracy "$(grep '^Test:' <<<"$out")")
  at_least "$acc" 0.865 && pass || fail "fashion_mnist test accuracy $acc < 0.865"
  ;;
cli)
  expect_exit 2 "needs a config file" "$ctrain" train
  expect_exit 2 "unknown option '--bogus'" "$ctrain" train "$src/examples/fashion_mnist.conf" --bogus
  expect_exit 2 "cannot open" "$ctrain" summary "$work/missing.conf"
  expect_exit 2 "--threads needs an integer" "$ctrain" train "$src/examples/fashion_mnist.conf" --threads x
  printf '[model]\ninput = 4\n[out]\ntype = dense\nunits = 2\n[data]\nformat = csv\ntrain = nothere.csv\n[train]\nloss = mse\n' >"$work/nodata.conf"
  expect_exit 2 "nothere.csv" "$ctrain" train "$work/nodata.conf"
  printf 'not a model\n' >"$work/fake.h5"
  expect_exit 2 "predict needs a model file" "$ctrain" predict "$work/fake.h5" --input x
  head -c 4000 /dev/urandom >"$work/rand.csv"
  printf '[model]\ninput = 4\n[out]\ntype = dense\nunits = 2\n[data]\nformat = csv\ntrain = rand.csv\n[train]\nloss = mse\n' >"$work/rand.conf"
  expect_exit 2 "rand.csv" "$ctrain" train "$work/rand.conf"
  # Wrong input size for the data: exit 2 naming both sizes.
  expect_exit 2 "model input expects 5" "$ctrain" train "$src/examples/breast_cancer.conf" --set model.input=5
  # --set creates sections and overrides keys; summary reflects it.
  out=$("$ctrain" summary "$src/examples/fashion_mnist.conf" --set dense.units=64) || fail "summary exited $?"
  grep -q 'dense (Dense)               (None, 64)                50240' <<<"$out" && pass || fail "--set dense.units=64 not applied: $out"
  grep -q '^Total params: 50,890$' <<<"$out" && pass || fail "total params wrong"
  out=$("$ctrain" bench "$src/examples/breast_cancer.conf" --steps 20 --threads 1) || fail "bench exited $?"
  grep -Eq '^bench: [0-9]+\.[0-9] images/s \(batch 32, 1 threads x 1 ranks, 20 steps\)$' <<<"$out" && pass || fail "bench line: $out"
  "$ctrain" --version | grep -q '^ctrain [0-9]' && pass || fail "--version"
  "$ctrain" help | grep -q 'dump-weights' && pass || fail "help"
  ;;
*)
  echo "unknown case $case" >&2
  exit 2
  ;;
esac
echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
