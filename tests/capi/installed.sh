#!/bin/bash
# The C API as a user meets it: install the build into a temporary prefix,
# build examples/capi/ in a separate CMake project with find_package(ctrain)
# and with a plain `cc $(pkg-config --cflags --libs ctrain)`, run them and
# check what they print.
#   installed.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1 src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
fail() { echo "FAIL: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$prefix" > "$work/install.log"
for f in include/ctrain.h bin/ctrain; do [ -e "$prefix/$f" ] || fail "install did not create $f"; done
lib=$(dirname "$(find "$prefix" -name libctrain.so -print -quit)")
[ -n "$lib" ] && [ -e "$lib/libctrain.a" ] || fail "install did not create libctrain.so and libctrain.a"
[ -e "$lib/pkgconfig/ctrain.pc" ] || fail "install did not create ctrain.pc"
[ -e "$lib/cmake/ctrain/ctrainConfig.cmake" ] || fail "install did not create the CMake package"
# the installed header stands alone
echo '#include <ctrain.h>
int main(void) { return ct_abi_version() == CT_ABI_VERSION ? 0 : 1; }' > "$work/abi.c"

# 1. a separate CMake project
cmake -S "$src/tests/capi/consumer" -B "$work/cmake" -DCMAKE_PREFIX_PATH="$prefix" \
      -DCT_EXAMPLES="$src/examples/capi" -DCMAKE_BUILD_TYPE=Release > "$work/cmake.log" || { cat "$work/cmake.log"; fail "configure"; }
cmake --build "$work/cmake" -j2 > "$work/build.log" 2>&1 || { cat "$work/build.log"; fail "find_package build"; }

# 2. plain cc with pkg-config
export PKG_CONFIG_PATH=$lib/pkgconfig
flags=$(pkg-config --cflags --libs ctrain)
mkdir -p "$work/cc"
cc -std=c11 -Wall -Wextra -Werror "$work/abi.c" $flags -o "$work/cc/abi" || fail "cc abi.c"
"$work/cc/abi" || fail "ABI version of the installed library differs from its header"
for f in "$src"/examples/capi/*.c; do
  name=$(basename "$f" .c)
  case $name in plugin_*) continue ;; esac
  cc -std=c11 -O2 -Wall -Wextra -Werror "$f" $flags -lm -o "$work/cc/$name" || fail "cc $name.c"
done

# 3. run both builds and check the outputs
export OMP_NUM_THREADS=1
for dir in "$work/cmake" "$work/cc"; do
  out=$("$dir/linear_fit") || fail "$dir/linear_fit exited with $?"
  echo "$out" | tail -1
  echo "$out" | awk '/^learned/ { w = $4; b = $9 }
    END { if (w == "" || (w - 3) ^ 2 > 0.0025 || (b - 2) ^ 2 > 0.0025) { print "W " w " b " b " not within 0.05 of 3 and 2"; exit 1 } }' \
    || fail "linear_fit ($dir)"
done
if [ -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  out=$("$work/cc/softmax_regression" /usr/share/datasets/fashion-mnist 2) || fail "softmax_regression exited with $?"
  echo "$out"
  echo "$out" | awk '/test accuracy/ { a = $NF } END { if (a < 0.80) { print "test accuracy " a " < 0.80"; exit 1 } }' \
    || fail "softmax_regression"
  # the custom loop against `ctrain train` (the installed one), same config
  # and seed: weights identical bit for bit (read back with h5py)
  sets=(train.epochs=2 data.validation_split=0.9)
  "$prefix/bin/ctrain" train "$src/examples/fashion_mnist.conf" --verbose 0 \
      $(printf -- '--set %s ' "${sets[@]}") --set train.save_model="$work/ref.h5" > "$work/ref.log" 2>&1 \
    || { cat "$work/ref.log"; fail "ctrain train"; }
  "$work/cc/custom_loop" "$src/examples/fashion_mnist.conf" "$work/loop.h5" "${sets[@]}" \
    || fail "custom_loop exited with $?"
  py=python3
  [ -x /usr/bin/python3 ] && py=/usr/bin/python3   # Debian's, where python3-h5py installs
  $py - "$work/ref.h5" "$work/loop.h5" <<'PY' || fail "custom loop weights differ from ctrain train's"
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r")["model_weights"], h5py.File(sys.argv[2], "r")["model_weights"]
names = []
a.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
assert len(names) == 4, names
for n in names:
    x, y = a[n][()], b[n][()]
    assert x.shape == y.shape and np.array_equal(x.view(np.uint32), y.view(np.uint32)), n
print("custom loop: %d weight arrays identical to ctrain train's" % len(names))
PY
else
  echo "fashion-mnist not installed: softmax_regression and custom_loop skipped"
fi
echo "installed C API: PASS"
