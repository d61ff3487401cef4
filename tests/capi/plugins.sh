#!/bin/bash
# Plugins through the ctrain program: MyDense (examples/capi/plugin_mydense.c)
# loaded from a .conf trains the breast-cancer classifier; the .h5 it saves
# names the plugin and reloads; a model file whose plugin is gone, a missing
# file, a plugin without ct_plugin_register and one built for another ABI
# each exit 2 with a message naming the plugin.
#   plugins.sh CTRAIN SOURCE_DIR MYDENSE_SO NOSYM_SO BADABI_SO
set -uo pipefail
ctrain=$1 src=$2 mydense=$3 nosym=$4 badabi=$5
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
export OMP_NUM_THREADS=1
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3   # Debian's, where python3-h5py installs

# the example as its README runs it: the plugin next to the .conf
cp "$mydense" "$work/libmydense.so"
sed "s#\.\./data/#$src/examples/data/#" "$src/examples/capi/mydense.conf" > "$work/mydense.conf"
out=$("$ctrain" train "$work/mydense.conf" --set train.epochs=20 --set train.save_model="$work/m.h5" 2>&1) \
  || { echo "$out"; fail "training with the plugin exited with $?"; }
echo "$out" | tail -2
echo "$out" | awk '/^Test:/ { for (i = 1; i <= NF; i++) if ($i == "accuracy:") a = $(i + 1) }
  END { if (a == "" || a < 0.9) { print "test accuracy " a " < 0.9"; exit 1 } }' || fail "MyDense did not learn"
# the plugin's metric: binary_error = 1 - accuracy
echo "$out" | awk '/^Test:/ { for (i = 1; i <= NF; i++) { if ($i == "accuracy:") a = $(i + 1); if ($i == "binary_error:") e = $(i + 1) } }
  END { if (e == "" || (a + e - 1) ^ 2 > 1e-6) { print "binary_error " e " is not 1 - accuracy " a; exit 1 } }' \
  || fail "the plugin's metric"
sum=$("$ctrain" summary "$work/m.h5" 2>&1) || { echo "$sum"; fail "summary of the saved model"; }
echo "$sum" | grep -q "(MyDense)" || { echo "$sum"; fail "the summary does not name the MyDense class"; }
$py - "$work/m.h5" <<'PY' || fail "the .h5 does not hold MyDense's weights under the layer name"
import sys, h5py
f = h5py.File(sys.argv[1], "r")
w = f["model_weights"]
assert "hidden" in w and "hidden_1" in w, list(w)
names = [n.decode() if isinstance(n, bytes) else n for n in w["hidden"].attrs["weight_names"]]
assert names == ["hidden/kernel:0", "hidden/bias:0"], names
assert w["hidden"]["hidden"]["kernel:0"].shape == (30, 32)
PY

expect_exit2() { # what, needle, command...
  local what=$1 needle=$2
  shift 2
  local msg rc
  msg=$("$@" 2>&1)
  rc=$?
  [ $rc -eq 2 ] || { echo "$msg"; fail "$what: exit $rc, expected 2"; }
  echo "$msg" | grep -qF -- "$needle" || { echo "$msg"; fail "$what: the message does not name '$needle'"; }
  echo "$what: exit 2: $(echo "$msg" | head -1)"
}

# the model file needs its plugin
mv "$work/libmydense.so" "$work/moved.so"
expect_exit2 "model file without its plugin" "libmydense.so" "$ctrain" summary "$work/m.h5"
# a config naming a plugin that is not there, has no register symbol, or another ABI
for case in missing nosym badabi; do
  case $case in
    missing) so=$work/libnothere.so; needle="libnothere.so" ;;
    nosym) cp "$nosym" "$work/libnosym.so"; so=$work/libnosym.so; needle="libnosym.so': symbol ct_plugin_register is missing" ;;
    badabi) cp "$badabi" "$work/libbadabi.so"; so=$work/libbadabi.so; needle="libbadabi.so': built for ctrain ABI version" ;;
  esac
  sed "s#^load = .*#load = $so#" "$work/mydense.conf" > "$work/$case.conf"
  expect_exit2 "plugin $case" "$needle" "$ctrain" summary "$work/$case.conf"
done
echo "plugins: PASS"
