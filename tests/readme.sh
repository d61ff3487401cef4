#!/usr/bin/env bash
# The README's quick start, as a new user runs it: every command between
# the <!-- quickstart:begin --> and <!-- quickstart:end --> markers, in
# order, in a fresh `git clone` of the repository, must exit 0.
#   readme.sh SOURCE_DIR BUILD_DIR
# The clone uses the build under test (build/ is a link to BUILD_DIR)
# rather than building again; the `launcher/setup.sh` lines (install and
# build, then the first training command, which the block repeats; with
# --test, what CI itself runs) are therefore not run here. Sections added
# elsewhere in the README do not matter: only the marked block is read.
set -u
src=$1 build=$2
fails=0 passes=0
pass() { passes=$((passes + 1)); }
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

if ! git -C "$src" rev-parse -q HEAD >/dev/null 2>&1; then echo "SKIPPED: $src is not a git checkout"; exit 0; fi
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  echo "SKIPPED: dataset-fashion-mnist is not installed (launcher/setup.sh installs it)"; exit 0
fi
work=$(mktemp -d /tmp/ct_readme.XXXXXX)
trap 'rm -rf "$work"' EXIT
git clone -q "$src" "$work/repo" || { echo "FAIL: git clone"; exit 1; }
ln -s "$(cd "$build" && pwd)" "$work/repo/build"
cd "$work/repo" || exit 1

# the indented command lines of the marked block, in order
mapfile -t cmds < <(awk '/<!-- quickstart:begin/ { on = 1; next } /<!-- quickstart:end/ { on = 0 }
                         on && /^    [^ ]/ { sub(/^    /, ""); print }' README.md)
[ "${#cmds[@]}" -ge 5 ] && pass || fail "the quick-start block holds ${#cmds[@]} commands: are the markers in README.md?"
# one thread: the results do not depend on the thread count, and a loaded
# CI machine runs one thread per test fastest
export OMP_NUM_THREADS=1
for cmd in "${cmds[@]}"; do
  case $cmd in
    launcher/setup.sh*)
      bash -n launcher/setup.sh && pass || fail "launcher/setup.sh is not valid bash"
      echo "not run here (installs and builds): $cmd"
      continue ;;
  esac
  echo "+ $cmd"
  out=$(bash -c "$cmd" 2>&1); rc=$?
  if [ "$rc" -ne 0 ]; then fail "'$cmd' exited $rc: $(tail -5 <<<"$out")"; continue; fi
  pass
  case $cmd in
    *" evaluate "*) grep -q '^Test: loss: [0-9.]* - accuracy: 0\.[89]' <<<"$out" && pass ||
                      fail "'$cmd' did not print the test line of a trained model: $out" ;;
    *" predict "*) [ "$(wc -l <predictions.csv)" -eq 10000 ] && pass || fail "predictions.csv: $(wc -l <predictions.csv) rows" ;;
    *" dump-weights "*) grep -q '^dense/dense/kernel:0 shape (784, 128)$' weights.txt && pass || fail "weights.txt" ;;
    *" bench "*) grep -q '^bench: [0-9.]* images/s' <<<"$out" && pass || fail "no bench line: $out" ;;
  esac
done
# evaluate MODEL.h5 and evaluate CONF print the same line (the same model)
a=$(build/ctrain evaluate examples/fashion_mnist.h5 2>/dev/null) b=$(build/ctrain evaluate examples/fashion_mnist.conf 2>/dev/null)
[ -n "$a" ] && [ "$a" = "$b" ] && pass || fail "evaluate MODEL.h5 '$a' and evaluate CONF '$b' differ"
echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
