#!/usr/bin/env bash
# End-to-end checks of the boosted trees through the ctrain executable.
#   e2e_trees.sh CTRAIN SOURCE_DIR CASE
# cli:     bad configs and data exit 2 naming file and line; evaluate,
#          predict, summary, dump-trees on a trained model; --resume between
#          iterations grows the same trees as an uninterrupted run.
# mpi:     1, 2 and 4 ranks grow the same trees (identical dump-trees text).
# sklearn: accuracy and MSE against scikit-learn 1.2 (compare_sklearn.py).
set -u
ctrain=$1 src=$2 case=$3
work=$(mktemp -d /tmp/ct_trees.XXXXXX)
trap 'rm -rf "$work"' EXIT
fails=0 passes=0
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
pass() { passes=$((passes + 1)); }
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
expect_exit() { # CODE SUBSTRING CMD...
  local code=$1 sub=$2; shift 2
  local err rc
  err=$("$@" 2>&1 >/dev/null); rc=$?
  if [ "$rc" -ne "$code" ]; then fail "$* exited $rc, expected $code ($err)"; return; fi
  if ! grep -qF -- "$sub" <<<"$err"; then fail "$*: stderr lacks '$sub': $err"; return; fi
  pass
}
titanic=("$src/examples/titanic_trees.conf" --verbose 0)

case $case in
cli)
  # a categorical column with more levels than max_bins: the line where level 256 first appears
  { echo "c,x,y"; for i in $(seq 1 300); do echo "v$i,$i,$((i % 2))"; done; } >"$work/many.csv"
  cat >"$work/many.conf" <<CONF
[model]
kind = boosted_trees
[boosted_trees]
loss = log_loss
categorical_features = c
[data]
format = csv
train = many.csv
CONF
  expect_exit 2 "many.csv:257: categorical feature 'c' has 300 levels" "$ctrain" train "$work/many.conf"
  # a label that is not 0/1 for binary_crossentropy, on line 4
  printf 'a,y\n1,0\n2,1\n3,2\n4,1\n' >"$work/bad.csv"
  sed -e 's/log_loss/binary_crossentropy/' -e 's/^categorical_features.*//' -e 's/many.csv/bad.csv/' "$work/many.conf" >"$work/bad.conf"
  expect_exit 2 "bad.csv:4: label 2 is not 0 or 1 (loss binary_crossentropy)" "$ctrain" train "$work/bad.conf"
  # a text column that is not declared categorical
  sed -e 's/^categorical_features.*//' "$work/many.conf" >"$work/text.conf"
  expect_exit 2 "many.csv:2: feature 'c' holds text" "$ctrain" train "$work/text.conf"
  # an unknown key, with its line
  sed -e 's/^loss = log_loss/loss = log_loss\nmax_leaves = 5/' "$work/many.conf" >"$work/key.conf"
  expect_exit 2 "key.conf:5: [boosted_trees] unknown key 'max_leaves'" "$ctrain" train "$work/key.conf"
  expect_exit 2 "is not a feature name" "$ctrain" train "${titanic[@]}" --set boosted_trees.categorical_features=sexx
  expect_exit 2 "boosted_trees loss" "$ctrain" train "${titanic[@]}" --set boosted_trees.loss=hinge

  # npy and HDF5 sources: a 3-class problem with a missing-value column; the
  # same rows from either file give the same trees
  "$py" - "$work" <<'PY' || fail "writing npy/hdf5"
import sys, numpy as np, h5py
w = sys.argv[1]; r = np.random.RandomState(0)
x = r.rand(600, 4).astype(np.float32); x[r.rand(600) < 0.2, 3] = np.nan
y = ((x[:, 0] > 0.5).astype(int) + (x[:, 1] > 0.3)).astype(np.int32)
np.save(w + "/x.npy", x); np.save(w + "/y.npy", y)
with h5py.File(w + "/d.h5", "w") as f: f["x"] = x; f["y"] = y
PY
  for fmt in npy hdf5; do
    if [ $fmt = npy ]; then files=(--set data.train="$work/x.npy" --set data.train_labels="$work/y.npy")
    else files=(--set data.train="$work/d.h5"); fi
    printf '[model]\nkind = boosted_trees\n[boosted_trees]\nloss = log_loss\nmax_iter = 20\n[data]\nformat = %s\ntest_split = 0.25\n' $fmt >"$work/$fmt.conf"
    out=$("$ctrain" train "$work/$fmt.conf" --verbose 0 "${files[@]}" --set train.save_model="$work/$fmt.model.h5") || fail "$fmt: $out"
    acc=$(sed -n 's/^Test: .*accuracy: \([0-9.]*\)/\1/p' <<<"$out")
    awk -v a="$acc" 'BEGIN { exit !(a != "" && a >= 0.9) }' && pass || fail "$fmt: 3-class test accuracy '$acc' < 0.9"
    "$ctrain" dump-trees "$work/$fmt.model.h5" >"$work/$fmt.txt"
  done
  grep -q '^boosted trees: log_loss (multiclass), 4 features, 20 iterations x 3 trees' "$work/npy.txt" && pass || fail "npy dump: $(head -1 "$work/npy.txt")"
  cmp -s "$work/npy.txt" "$work/hdf5.txt" && pass || fail "npy and hdf5 grew different trees"

  # train, then evaluate/predict/summary/dump-trees on the saved model
  out=$("$ctrain" train "${titanic[@]}" --set train.save_model="$work/t.h5") || fail "train exited $?"
  test_line=$(grep '^Test:' <<<"$out")
  [ -n "$test_line" ] && pass || fail "no Test line: $out"
  ev=$("$ctrain" evaluate "$work/t.h5") || fail "evaluate exited $?"
  [ "$ev" = "$test_line" ] && pass || fail "evaluate '$ev' differs from training's '$test_line'"
  "$ctrain" predict "$work/t.h5" --input "$src/examples/data/titanic.csv" --output "$work/p.csv" || fail "predict exited $?"
  [ "$(wc -l <"$work/p.csv")" -eq 1309 ] && pass || fail "predict wrote $(wc -l <"$work/p.csv") rows, expected 1309"
  awk -F, '{ if ($1 < 0 || $1 > 1) bad = 1 } END { exit bad }' "$work/p.csv" && pass || fail "probabilities outside [0, 1]"
  sum=$("$ctrain" summary "$work/t.h5") || fail "summary exited $?"
  grep -q '^sex  *2 levels' <<<"$sum" && grep -q 'importance' <<<"$sum" && pass || fail "summary: $sum"
  "$ctrain" dump-trees "$work/t.h5" --output "$work/t.txt" || fail "dump-trees exited $?"
  [ "$(grep -c '^tree ' "$work/t.txt")" -eq 100 ] && grep -q 'sex in {' "$work/t.txt" && pass || fail "dump-trees: $(head -3 "$work/t.txt")"
  expect_exit 2 "needs a model file" "$ctrain" dump-trees "$src/examples/titanic_trees.conf"
  expect_exit 2 "boosted trees have no Keras architecture" "$ctrain" export-json "$src/examples/titanic_trees.conf"

  # --resume between iterations: 8 iterations, then on to 20, equals 20 at once
  ck=(--set boosted_trees.checkpoint="$work/ck.h5" --set boosted_trees.checkpoint_freq=4 --set boosted_trees.max_iter=20)
  "$ctrain" train "${titanic[@]}" --set boosted_trees.max_iter=20 --set train.save_model="$work/full.h5" >/dev/null || fail "full run"
  "$ctrain" train "${titanic[@]}" "${ck[@]}" --set boosted_trees.max_iter=8 --set train.save_model="$work/part.h5" >/dev/null || fail "first part"
  out=$("$ctrain" train "$src/examples/titanic_trees.conf" --verbose 1 "${ck[@]}" --set train.save_model="$work/resumed.h5" --resume) || fail "resumed part"
  grep -q 'Resuming from .*ck.h5 (iteration 8)' <<<"$out" && grep -q '^\[9/20\]' <<<"$out" && ! grep -q '^\[8/20\]' <<<"$out" &&
    pass || fail "resume output: $out"
  "$ctrain" dump-trees "$work/full.h5" >"$work/full.txt"
  "$ctrain" dump-trees "$work/resumed.h5" >"$work/resumed.txt"
  cmp -s "$work/full.txt" "$work/resumed.txt" && pass || fail "resumed trees differ: $(diff "$work/full.txt" "$work/resumed.txt" | head -5)"
  ;;
mpi)
  mpi=(mpirun --oversubscribe)
  [ "$(id -u)" -eq 0 ] && mpi+=(--allow-run-as-root)
  # early stopping on (a validation split), categorical and missing values, 40 iterations
  args=("${titanic[@]}" --set boosted_trees.early_stopping=true --set boosted_trees.max_iter=40)
  for n in 1 2 4; do
    if [ $n -eq 1 ]; then "$ctrain" train "${args[@]}" --set train.save_model="$work/m1.h5" >/dev/null || fail "1 rank"
    else timeout 300 "${mpi[@]}" -np $n "$ctrain" train "${args[@]}" --set train.save_model="$work/m$n.h5" >/dev/null 2>"$work/err$n" || fail "$n ranks: $(cat "$work/err$n")"; fi
    "$ctrain" dump-trees "$work/m$n.h5" >"$work/d$n.txt" || fail "dump $n"
  done
  for n in 2 4; do
    cmp -s "$work/d1.txt" "$work/d$n.txt" && pass || fail "$n ranks grew other trees: $(diff "$work/d1.txt" "$work/d$n.txt" | head -4)"
  done
  # regression with 13 numeric features, depth-wise growth
  args=("$src/examples/boston_trees.conf" --verbose 0 --set boosted_trees.grow_policy=depthwise --set boosted_trees.max_depth=4 --set boosted_trees.max_leaf_nodes=0 --set boosted_trees.max_iter=30)
  "$ctrain" train "${args[@]}" --set train.save_model="$work/b1.h5" >/dev/null || fail "boston 1 rank"
  timeout 300 "${mpi[@]}" -np 3 "$ctrain" train "${args[@]}" --set train.save_model="$work/b3.h5" >/dev/null 2>&1 || fail "boston 3 ranks"
  "$ctrain" dump-trees "$work/b1.h5" >"$work/b1.txt"; "$ctrain" dump-trees "$work/b3.h5" >"$work/b3.txt"
  cmp -s "$work/b1.txt" "$work/b3.txt" && pass || fail "boston: 3 ranks grew other trees"
  echo "$(grep -c '^tree' "$work/d1.txt") titanic trees, $(grep -c '^tree' "$work/b1.txt") boston trees compared"
  ;;
sklearn)
  "$py" -c 'import sklearn' 2>/dev/null || { echo "python3-sklearn is not installed (launcher/setup.sh --test installs it)"; exit 1; }
  "$py" "$src/tests/trees/compare_sklearn.py" "$ctrain" "$src/examples" "$work" && pass || fail "compare_sklearn"
  ;;
*) echo "unknown case $case" >&2; exit 2 ;;
esac
echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
