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
# Debian's python3, where python3-h5py installs (a pyenv one may come first on PATH)
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3

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
fashion_mnist_cnn)
  # The CNN example reaches 0.91 in 10 epochs (the result does not depend
  # on the thread count: the kernels reduce in a fixed order).
  out=$("$ctrain" "$src/examples/fashion_mnist_cnn.conf" --verbose 0) || fail "train exited $?"
  test_line=$(grep '^Test:' <<<"$out")
  echo "$test_line"
  at_least "$(metric accuracy "$test_line")" 0.91 && pass || fail "fashion_mnist_cnn test accuracy below 0.91: $test_line"
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
  epochs=$(grep -c '^1875/1875 - [0-9]*s - loss: ' <<<"$out")
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
  expect_exit 2 "not an HDF5 file" "$ctrain" predict "$work/fake.h5" --input x
  expect_exit 2 "predict needs a model file" "$ctrain" predict "$src/examples/breast_cancer.conf" --input x
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
  # [distributed] lr_scaling = linear: lr * batch_size / base_batch_size, seen in the CSV log's lr column.
  "$ctrain" "$src/examples/breast_cancer.conf" --verbose 0 --set train.epochs=1 --set train.batch_size=64 \
    --set distributed.lr_scaling=linear --set distributed.base_batch_size=16 --set lr_schedule.schedule=constant \
    --set "csv_logger.filename=$work/lr.csv" >/dev/null || fail "lr scaling run"
  awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i ~ /^lr/) c = i } NR == 2 { exit !(c && $c + 0 == 0.004) }' "$work/lr.csv" &&
    pass || fail "linear lr scaling: $(cat "$work/lr.csv")"
  # Every example config builds (parameter counts of the seed's models, as Keras counts them).
  for ex in "$src"/examples/*.conf; do
    "$ctrain" summary "$ex" >"$work/summary.txt" 2>&1 && pass || fail "summary $ex: $(cat "$work/summary.txt")"
  done
  "$ctrain" summary "$src/examples/cnn_basic.conf" | grep -q '^Total params: 231,658$' && pass || fail "cnn_basic params"
  bash -n "$src/examples/slurm/cifar.sbatch" && pass || fail "examples/slurm/cifar.sbatch is not valid bash"
  # every --set the batch script passes is a key the config accepts
  sets=$(grep -o -- '--set [^ ]*' "$src/examples/slurm/cifar.sbatch" | sed 's/"//g' | tr '\n' ' ')
  # shellcheck disable=SC2086
  "$ctrain" summary "$src/examples/cifar.conf" $sets >/dev/null && pass || fail "the batch script's --set options: $sets"
  "$ctrain" summary "$src/examples/resnet20.conf" | grep -q '^Trainable params: 269,722$' && pass || fail "resnet20 params"
  "$ctrain" --version | grep -q '^ctrain [0-9]' && pass || fail "--version"
  "$ctrain" help | grep -q 'dump-weights' && pass || fail "help"
  ;;
checkpoints)
  bc="$src/examples/breast_cancer.conf"
  ck=(--set "model_checkpoint.filepath=$work/ck-{epoch:02d}.h5" --verbose 0 --threads 1)
  # 4 epochs straight vs 2 epochs, then --resume to 4: identical weights.
  "$ctrain" "$bc" "${ck[@]}" --set train.epochs=4 --set train.save_model="$work/straight.h5" >/dev/null || fail "straight run"
  rm -f "$work"/ck-*.h5
  "$ctrain" "$bc" "${ck[@]}" --set train.epochs=2 >/dev/null || fail "first half"
  [ -f "$work/ck-02.h5" ] && [ ! -f "$work/ck-03.h5" ] && pass || fail "expected ck-02.h5 and no ck-03.h5"
  "$ctrain" "$bc" "${ck[@]}" --set train.epochs=4 --set train.save_model="$work/resumed.h5" --resume >/dev/null || fail "resume"
  "$ctrain" dump-weights "$work/straight.h5" --output "$work/a.txt" && "$ctrain" dump-weights "$work/resumed.h5" --output "$work/b.txt"
  cmp -s "$work/a.txt" "$work/b.txt" && pass || fail "2 + 2 resumed epochs differ from 4 straight"
  # --resume without any checkpoint starts fresh.
  out=$("$ctrain" "$bc" --set "model_checkpoint.filepath=$work/none/x-{epoch}.h5" --set train.epochs=1 --resume --verbose 1) || fail "fresh resume"
  grep -q "starting fresh" <<<"$out" && pass || fail "no 'starting fresh' message"
  # [model] weights loads a weights-only file into a model built from the config.
  "$ctrain" "$bc" --verbose 0 --threads 1 --set train.epochs=1 \
     --set "model_checkpoint.filepath=$work/w.h5" --set model_checkpoint.save_weights_only=true >/dev/null || fail "weights-only save"
  a=$("$ctrain" evaluate "$bc" --set "model.weights=$work/w.h5") || fail "evaluate with model.weights"
  [ -n "$a" ] && pass || fail "evaluate with model.weights printed nothing"
  # without any trained weights, evaluate refuses rather than evaluate an untrained model
  expect_exit 2 "no trained model to evaluate" "$ctrain" evaluate "$bc"
  # Corrupt, foreign, truncated and mismatched files exit 2 and name the file.
  head -c 3000 "$work/straight.h5" >"$work/cut.h5"
  expect_exit 2 "cut.h5" "$ctrain" evaluate "$work/cut.h5"
  printf 'plain text, not HDF5\n' >"$work/fake.h5"
  expect_exit 2 "not an HDF5 file" "$ctrain" evaluate "$work/fake.h5"
  expect_exit 2 "dense/dense/kernel:0" "$ctrain" evaluate "$bc" --set "model.weights=$work/straight.h5" --set dense.units=16
  cp "$work/straight.h5" "$work/keep.h5"
  expect_exit 2 "cut.h5" "$ctrain" train "$bc" --resume "$work/cut.h5" --set train.epochs=1 || true
  cmp -s "$work/straight.h5" "$work/keep.h5" && pass || fail "a failed run changed an existing file"
  # Keras layout as h5py sees it.
  py=python3
  [ -x /usr/bin/python3 ] && py=/usr/bin/python3   # Debian's, where python3-h5py installs
  if $py -c 'import h5py' 2>/dev/null; then
    $py - "$work/straight.h5" "$work/w.h5" <<'PY' && pass || fail "h5py layout"
import sys, h5py
f = h5py.File(sys.argv[1], "r")
names = [n.decode() for n in f["model_weights"].attrs["layer_names"]]
assert names == ["dense", "dense_1", "dense_2"], names
wn = [n.decode() for n in f["model_weights/dense"].attrs["weight_names"]]
assert wn == ["dense/kernel:0", "dense/bias:0"], wn
assert f["model_weights/dense/dense/kernel:0"].shape == (30, 32)
assert f["model_weights/dense_2/dense_2/bias:0"].shape == (1,)
assert "model_config" in f.attrs and f.attrs["keras_version"]
w = h5py.File(sys.argv[2], "r")
assert [n.decode() for n in w.attrs["layer_names"]] == names
assert w["dense/dense/kernel:0"].shape == (30, 32)
PY
  else
    echo "h5py not installed: layout check skipped"
  fi
  ;;
kill)
  # SIGKILL in the middle of an epoch (and so, at times, in the middle of
  # writing a checkpoint), then --resume: the result equals a run that was
  # never interrupted, and every checkpoint left behind loads.
  fm="$src/examples/fashion_mnist.conf"
  opts=(--threads 1 --verbose 0 --set train.epochs=2 --set train.batch_size=128
        --set "model_checkpoint.filepath=$work/k-{epoch}-{batch}.h5" --set model_checkpoint.save_freq=20
        --set model_checkpoint.keep=3)
  "$ctrain" "$fm" "${opts[@]}" --set train.save_model="$work/straight.h5" >/dev/null || fail "uninterrupted run"
  rm -f "$work"/k-*.h5
  "$ctrain" "$fm" "${opts[@]}" >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 200); do
    ls "$work"/k-1-2*.h5 >/dev/null 2>&1 && break
    sleep 0.05
  done
  sleep 0.3
  kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  left=$(ls "$work"/k-*.h5 2>/dev/null | wc -l)
  [ "$left" -ge 1 ] && pass || fail "no checkpoint before the kill"
  bad=0
  for f in "$work"/k-*.h5; do "$ctrain" dump-weights "$f" >/dev/null 2>&1 || bad=1; done
  [ "$bad" -eq 0 ] && pass || fail "a checkpoint left by the kill does not load"
  "$ctrain" "$fm" "${opts[@]}" --resume --set train.save_model="$work/resumed.h5" >/dev/null || fail "resume after kill"
  "$ctrain" dump-weights "$work/straight.h5" --output "$work/a.txt" && "$ctrain" dump-weights "$work/resumed.h5" --output "$work/b.txt"
  cmp -s "$work/a.txt" "$work/b.txt" && pass || fail "killed and resumed run differs from the uninterrupted one"
  ;;
tensorboard)
  "$ctrain" "$src/examples/breast_cancer.conf" --verbose 0 --set train.epochs=3 --set train.validation_freq=1 \
    --set data.validation_split=0.2 --set "tensorboard.log_dir=$work/tb" --set tensorboard.histogram_freq=1 >/dev/null ||
    fail "train with tensorboard"
  for d in train validation; do
    f=$(ls "$work/tb/$d"/events.out.tfevents.*.v2 2>/dev/null | head -1)
    [ -n "$f" ] && pass || { fail "no event file in $d"; continue; }
    if command -v protoc >/dev/null; then
      # Walk the TFRecord framing and decode every payload with protoc.
      python3 - "$f" <<'PY' >"$work/$d.txt" && pass || fail "$d: framing"
import struct, subprocess, sys
data = open(sys.argv[1], "rb").read()
off = 0
while off < len(data):
    (n,) = struct.unpack_from("<Q", data, off)
    payload = data[off + 12: off + 12 + n]
    off += n + 16
    print(subprocess.run(["protoc", "--decode_raw"], input=payload, capture_output=True, check=True).stdout.decode())
PY
      grep -q 'brain.Event:2' "$work/$d.txt" && pass || fail "$d: no file_version event"
      grep -q 'epoch_loss' "$work/$d.txt" && pass || fail "$d: no epoch_loss"
    else
      echo "protoc not installed: decode check skipped"
    fi
  done
  grep -q 'dense/kernel_0/histogram' "$work/train.txt" 2>/dev/null || ! command -v protoc >/dev/null && pass || fail "no histogram"
  ;;
sources)
  # The npy, hdf5 and image_folder sources through the command line: files
  # written here by numpy/h5py/zlib (python3-h5py, as setup.sh --test
  # installs), a class that is the image's brightness, learnt to >= 0.9.
  if ! $py -c 'import numpy, h5py' 2>/dev/null; then echo "python3-h5py not installed: skipped"; exit 0; fi
  $py - "$work" <<'PY' || fail "writing the data files"
import os, struct, sys, zlib
import numpy as np, h5py
w = sys.argv[1]
rng = np.random.default_rng(7)
y = rng.integers(0, 2, 240)
x = (rng.integers(0, 100, (240, 8, 8, 1)) + 120 * y[:, None, None, None]).astype(np.uint8)
np.save(f"{w}/x.npy", x); np.save(f"{w}/y.npy", y.astype(np.int64))
with h5py.File(f"{w}/d.h5", "w") as f:
    f["images"] = x; f["labels"] = y
def png(path, img):  # 8-bit grayscale PNG
    raw = b"".join(b"\0" + bytes(r) for r in img)
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
for c in ("dark", "light"):
    os.makedirs(f"{w}/img/{c}")
for i in range(240):
    png(f"{w}/img/{'light' if y[i] else 'dark'}/{i:03d}.png", x[i, :, :, 0])
PY
  cat >"$work/m.conf" <<'EOF2'
[model]
input = 8, 8, 1
[flatten]
type = flatten
[hidden]
type = dense
units = 16
activation = relu
[out]
type = dense
units = 2
activation = softmax
[augment]
rescale = 0.00392156862745098
[train]
optimizer = adam
learning_rate = 0.01
loss = sparse_categorical_crossentropy
metrics = accuracy
batch_size = 16
epochs = 4
EOF2
  for fmt in npy hdf5 image_folder; do
    case $fmt in
      npy) d=(--set data.format=npy --set "data.train=$work/x.npy" --set "data.train_labels=$work/y.npy"
              --set "data.test=$work/x.npy" --set "data.test_labels=$work/y.npy") ;;
      hdf5) d=(--set data.format=hdf5 --set "data.train=$work/d.h5" --set "data.test=$work/d.h5"
               --set data.x_dataset=images --set data.y_dataset=labels) ;;
      image_folder) d=(--set data.format=image_folder --set "data.train=$work/img" --set "data.test=$work/img"
                       --set data.color_mode=grayscale --set data.workers=3 --set data.cache=true
                       --set augment.horizontal_flip=true) ;;
    esac
    out=$("$ctrain" "$work/m.conf" --verbose 2 --set data.validation_split=0.25 "${d[@]}" 2>&1) || fail "$fmt: exited $?: $out"
    echo "$fmt: $(grep '^Test:' <<<"$out")"
    grep -q '^12/12 - ' <<<"$out" && pass || fail "$fmt: expected 12 steps of 16 (180 training samples): $out"
    at_least "$(metric accuracy "$(grep '^Test:' <<<"$out")")" 0.9 && pass || fail "$fmt: accuracy below 0.9"
  done
  expect_exit 2 'labels' "$ctrain" "$work/m.conf" --set data.format=hdf5 --set "data.train=$work/d.h5" --set data.x_dataset=images
  expect_exit 2 "$work/nope.npy" "$ctrain" "$work/m.conf" --set data.format=npy --set "data.train=$work/nope.npy" --set "data.train_labels=$work/y.npy"
  ;;
augment|mpi_augment)
  # Synthetic CIFAR-10 files (the tests cannot download) and examples/cifar.conf.
  mkdir -p "$work/data/cifar-10-batches-bin"
  "$(dirname "$ctrain")/tests/make_cifar" "$work/data/cifar-10-batches-bin" 600 300 2 >/dev/null || fail "make_cifar"
  cp "$src/examples/cifar.conf" "$work/"
  cf=("$work/cifar.conf" --verbose 0 --threads 1 --set "model_checkpoint.filepath=$work/ck-{epoch}-{batch}.h5"
      --set "tensorboard.log_dir=$work/tb" --set "csv_logger.filename=$work/log.csv")
  ;;&
augment)
  # The pipeline with augmentation trains (the synthetic classes are learnable).
  out=$("$ctrain" "${cf[@]}" --set train.epochs=3 --set "train.save_model=$work/a.h5") || fail "train exited $?"
  acc=$(metric accuracy "$(grep '^Test:' <<<"$out")")
  echo "augmented: $(grep '^Test:' <<<"$out")"
  at_least "$acc" 0.5 && pass || fail "test accuracy $acc < 0.5 with augmentation"
  # The same weights for 1 worker without prefetch and 3 workers 4 batches ahead.
  for w in "1 0" "3 4"; do
    set -- $w
    "$ctrain" "${cf[@]}" --set train.epochs=1 --set data.workers=$1 --set data.prefetch=$2 \
      --set "train.save_model=$work/w$1.h5" >/dev/null || fail "workers $1 exited $?"
    "$ctrain" dump-weights "$work/w$1.h5" --output "$work/w$1.txt" || fail "dump w$1"
  done
  cmp -s "$work/w1.txt" "$work/w3.txt" && pass || fail "1 and 3 workers trained different weights"
  # A failure mid-epoch (step 25 of 2 epochs), then --resume from the last
  # checkpoint (every 10 batches): the weights of an uninterrupted run.
  opts=(--set train.epochs=2 --set model_checkpoint.save_freq=10 --set model_checkpoint.save_best_only=false
        --set data.workers=2 --set data.prefetch=3)
  "$ctrain" "${cf[@]}" "${opts[@]}" --set "train.save_model=$work/straight.h5" >/dev/null || fail "straight run"
  rm -f "$work"/ck-*.h5
  CT_TEST_FAIL_RANK=0 CT_TEST_FAIL_STEP=25 "$ctrain" "${cf[@]}" "${opts[@]}" >/dev/null 2>&1 && fail "the injected failure did not fail"
  ls "$work"/ck-2-3.h5 >/dev/null 2>&1 && pass || fail "no mid-epoch checkpoint (epoch 2, batch 3): $(ls "$work")"
  "$ctrain" "${cf[@]}" "${opts[@]}" --resume --set "train.save_model=$work/resumed.h5" >/dev/null || fail "resume"
  "$ctrain" dump-weights "$work/straight.h5" --output "$work/s.txt" && "$ctrain" dump-weights "$work/resumed.h5" --output "$work/r.txt"
  cmp -s "$work/s.txt" "$work/r.txt" && pass || fail "resumed mid-epoch with augmentation differs from straight"
  # featurewise statistics: per channel, kept in the model file, used again by evaluate.
  out=$("$ctrain" "${cf[@]}" --set train.epochs=1 --set augment.featurewise_center=true \
        --set augment.featurewise_std_normalization=true --set "train.save_model=$work/f.h5") || fail "featurewise exited $?"
  # (the thread count of the training run: OpenBLAS's sgemm in Dense rounds
  # differently with 2 threads, which can move the 4th digit)
  again=$("$ctrain" evaluate "$work/f.h5" --threads 1) || fail "evaluate exited $?"
  [ "$again" = "$(grep '^Test:' <<<"$out")" ] && pass || fail "evaluate '$again' != '$(grep '^Test:' <<<"$out")'"
  if $py -c 'import h5py' 2>/dev/null; then
    $py - "$work/f.h5" <<'PY' && pass || fail "feature statistics in the model file"
import sys, h5py
f = h5py.File(sys.argv[1], "r")
m, s = f["ctrain/feature_mean"][()], f["ctrain/feature_std"][()]
assert m.shape == (3,) and s.shape == (3,), (m.shape, s.shape)
# rescale 1/255 first: a mean of 8-bit pixels lies in [0, 1], the std in (0, 0.6)
assert all(0 < v < 1 for v in m) and all(0 < v < 0.6 for v in s), (m, s)
PY
  fi
  expect_exit 2 'fill_mode' "$ctrain" "${cf[@]}" --set augment.fill_mode=mirror
  expect_exit 2 'image transforms need image samples' "$ctrain" "$src/examples/breast_cancer.conf" --set augment.rotation_range=10
  ;;
mpi_augment)
  # With augmentation on workers, 1 and 2 ranks train on the same global
  # batches with the same transforms: the same loss (rel. 1e-4).
  mpi=(mpirun --oversubscribe)
  [ "$(id -u)" -eq 0 ] && mpi+=(--allow-run-as-root)
  one=$("$ctrain" "${cf[@]}" --verbose 2 --set train.epochs=1 2>&1) || fail "one rank: $one"
  two=$("${mpi[@]}" -np 2 "$ctrain" "${cf[@]}" --verbose 2 --set train.epochs=1 2>&1) || fail "two ranks: $two"
  a=$(metric loss "$(grep '^17/17' <<<"$one")") b=$(metric loss "$(grep '^17/17' <<<"$two")")
  echo "1 rank: $a, 2 ranks: $b"
  awk -v a="$a" -v b="$b" 'BEGIN { d = (a - b) / a; exit !(a != "" && b != "" && d <= 1e-4 && d >= -1e-4) }' &&
    pass || fail "augmented loss on 2 ranks $b vs $a on one"
  ;;
mpi_equal|mpi_uneven|mpi_fail|mpi_resume)
  mpi=(mpirun --oversubscribe)
  [ "$(id -u)" -eq 0 ] && mpi+=(--allow-run-as-root)
  ;;&
mpi_equal)
  # 1, 2 and 4 ranks train the same model: same loss (rel. 1e-4) and test
  # accuracy (0.01) after one epoch without dropout; every rank ends with
  # bitwise the weights of rank 0 (the launcher checks and fails otherwise).
  fm=("$src/examples/fashion_mnist.conf" --verbose 2 --set train.epochs=1 --set train.batch_size=64)
  declare -A loss acc
  for n in 1 2 4; do
    out=$("${mpi[@]}" -np $n "$ctrain" "${fm[@]}" --set "train.save_model=$work/m$n.h5" 2>&1) || fail "$n ranks exited $?: $out"
    line=$(grep '^938/938' <<<"$out"); test_line=$(grep '^Test:' <<<"$out")
    loss[$n]=$(metric loss "$line"); acc[$n]=$(metric accuracy "$test_line")
    echo "$n ranks: $line | $test_line"
  done
  for n in 2 4; do
    awk -v a="${loss[1]}" -v b="${loss[$n]}" 'BEGIN { d = (a - b) / a; exit !(a != "" && b != "" && d <= 1e-4 && d >= -1e-4) }' &&
      pass || fail "loss on $n ranks ${loss[$n]} vs ${loss[1]} on one"
    awk -v a="${acc[1]}" -v b="${acc[$n]}" 'BEGIN { d = a - b; exit !(a != "" && b != "" && d <= 0.01 && d >= -0.01) }' &&
      pass || fail "test accuracy on $n ranks ${acc[$n]} vs ${acc[1]} on one"
  done
  ;;
mpi_uneven)
  # 3 samples a step over 4 ranks (some ranks get none), a last batch of 2:
  # nothing hangs, and the result equals one rank's.
  bc=("$src/examples/breast_cancer.conf" --verbose 0 --set train.batch_size=3 --set train.epochs=2)
  one=$(timeout 120 "$ctrain" "${bc[@]}") || fail "one rank"
  four=$(timeout 120 "${mpi[@]}" -np 4 "$ctrain" "${bc[@]}" 2>/dev/null) || fail "4 ranks exited $?"
  a=$(metric loss "$one") b=$(metric loss "$four")
  awk -v a="$a" -v b="$b" 'BEGIN { d = (a - b) / a; exit !(a != "" && b != "" && d <= 1e-4 && d >= -1e-4) }' &&
    pass || fail "uneven: '$four' vs '$one'"
  ;;
mpi_resume)
  # On 2 ranks too: 4 epochs straight and 2 + --resume 2 give the same weights.
  bc=("$src/examples/breast_cancer.conf" --verbose 0 --set "model_checkpoint.filepath=$work/ck-{epoch:02d}.h5")
  "${mpi[@]}" -np 2 "$ctrain" "${bc[@]}" --set train.epochs=4 --set "train.save_model=$work/straight.h5" >/dev/null || fail "straight"
  rm -f "$work"/ck-*.h5
  "${mpi[@]}" -np 2 "$ctrain" "${bc[@]}" --set train.epochs=2 >/dev/null || fail "first half"
  "${mpi[@]}" -np 2 "$ctrain" "${bc[@]}" --set train.epochs=4 --resume --set "train.save_model=$work/resumed.h5" >/dev/null || fail "resume"
  "$ctrain" dump-weights "$work/straight.h5" --output "$work/a.txt" && "$ctrain" dump-weights "$work/resumed.h5" --output "$work/b.txt"
  cmp -s "$work/a.txt" "$work/b.txt" && pass || fail "2 ranks: resumed run differs"
  ;;
mpi_fail)
  # Rank 1 fails at step 5: the job ends, non-zero, naming the rank, long
  # before training could have finished (the 5 epochs take minutes; the
  # bound only catches a hang, not a slow machine: no timed assertion).
  err=$(CT_TEST_FAIL_RANK=1 CT_TEST_FAIL_STEP=5 timeout 300 "${mpi[@]}" -x CT_TEST_FAIL_RANK -x CT_TEST_FAIL_STEP -np 2 \
        "$ctrain" "$src/examples/fashion_mnist.conf" --verbose 0 --set "train.save_model=$work/never.h5" 2>&1 >/dev/null); rc=$?
  [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && pass || fail "job exit code $rc (124 = hung until the timeout)"
  [ ! -e "$work/never.h5" ] && pass || fail "the failed job saved a model"
  grep -q "error on rank 1: injected failure" <<<"$err" && pass || fail "message does not name rank 1: $err"
  ;;
*)
  echo "unknown case $case" >&2
  exit 2
  ;;
esac
echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
