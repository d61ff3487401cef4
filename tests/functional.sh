#!/usr/bin/env bash
# End-to-end checks of functional models through the ctrain command line:
#   functional.sh CTRAIN SOURCE_DIR CASE
# A two-input (an image and a vector), two-output (classes and a
# regression) model on .npy data made here with NumPy:
#   logs      Keras's log names in the CSV logger, the progress line and a
#             monitor; summary shows the inputs
#   mpi       1, 2 and 4 ranks train it to the same losses (1e-4 relative)
#   resume    2 epochs then --resume to 4 gives the weights of 4 straight
#   badinput  malformed data for the new constructs exits 2 naming the file
set -u
ctrain=$1 src=$2 case=$3
work=$(mktemp -d /tmp/ct_func.XXXXXX)
trap 'rm -rf "$work"' EXIT
fails=0 passes=0
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3
pass() { passes=$((passes + 1)); }
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
mpi=(mpirun --oversubscribe)
[ "$(id -u)" = 0 ] && mpi+=(--allow-run-as-root)

$py - "$work" <<'PY' || { echo "FAIL: numpy data"; exit 1; }
import sys, numpy as np
d = sys.argv[1]
r = np.random.default_rng(7)
n = 512
img = r.random((n, 6, 6, 1), dtype=np.float32)
aux = r.standard_normal((n, 3)).astype(np.float32)
cls = (img.reshape(n, -1)[:, :9].sum(1) > 4.5).astype(np.float32) * 2 + (aux[:, 0] > 0)
reg = np.stack([aux[:, 1] * 0.5, img.reshape(n, -1).mean(1)], 1).astype(np.float32)
for name, a in [("img", img), ("aux", aux), ("cls", cls.astype(np.float32)), ("reg", reg)]:
    np.save(f"{d}/{name}.npy", a)
tok = np.arange(n * 3, dtype=np.float32).reshape(n, 3) + 0.5
np.save(f"{d}/half.npy", tok)
np.save(f"{d}/short.npy", aux[:100])
PY

cat >"$work/two.conf" <<'CONF'
[img]
type = input
shape = 6, 6, 1

[aux]
type = input
shape = 3

[conv]
type = conv2d
filters = 4
kernel_size = 3
activation = relu
inputs = img

[flat]
type = flatten

[cat]
type = concatenate
inputs = flat, aux

[hid]
type = dense
units = 16
activation = relu

[cls]
type = dense
units = 4
activation = softmax

[reg]
type = dense
units = 2
inputs = hid

[model]
outputs = cls, reg

[data]
format = npy
train = img.npy, aux.npy
train_labels = cls.npy, reg.npy
validation_split = 0.25

[train]
optimizer = adam
learning_rate = 0.01
loss = cls: sparse_categorical_crossentropy, reg: mse
loss_weights = cls: 1.0, reg: 0.5
metrics = cls: accuracy
batch_size = 32
epochs = 3
verbose = 2
CONF

last_csv() { tail -1 "$1"; }
col() { # FILE NAME -> the last row's value of column NAME
  tr -d '\r' <"$1" | awk -F, -v k="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == k) c = i } END { if (c) print $c }'
}
same() { awk -v a="$1" -v b="$2" 'BEGIN { d = (a - b) / a; exit !(a != "" && b != "" && d <= 1e-4 && d >= -1e-4) }'; }

case $case in
logs)
  out=$("$ctrain" "$work/two.conf" --set "csv_logger.filename=$work/log.csv" --set early_stopping.monitor=val_cls_loss \
        --set early_stopping.patience=5 --set train.epochs=20 2>&1) || fail "training exited $?: $out"
  head -1 "$work/log.csv" | tr -d '\r' | grep -qx 'epoch,cls_accuracy,cls_loss,loss,reg_loss,val_cls_accuracy,val_cls_loss,val_loss,val_reg_loss' &&
    pass || fail "CSV header: $(head -1 "$work/log.csv")"
  # loss = cls_loss + 0.5 reg_loss (no regularizers)
  awk -F, -v want=1 'NR > 1 { d = $4 - ($3 + 0.5 * $5); if (d > 1e-4 || d < -1e-4) bad = 1 } END { exit bad }' "$work/log.csv" &&
    pass || fail "loss is not cls_loss + 0.5 reg_loss: $(cat "$work/log.csv")"
  grep -q 'loss: [0-9.]* - cls_loss: [0-9.]* - reg_loss: [0-9.]* - cls_accuracy: [0-9.]* - val_loss' <<<"$out" &&
    pass || fail "progress line: $out"
  sum=$("$ctrain" summary "$work/two.conf" 2>&1)
  grep -q 'img (InputLayer)' <<<"$sum" && grep -q 'aux (InputLayer)' <<<"$sum" && grep -q "\['flat\[0\]\[0\]', 'aux\[0\]\[0\]'\]" <<<"$sum" &&
    pass || fail "summary: $sum"
  acc=$(col "$work/log.csv" val_cls_accuracy)
  awk -v a="$acc" 'BEGIN { exit !(a > 0.6) }' && pass || fail "val_cls_accuracy $acc after 20 epochs"
  ;;
mpi)
  declare -A loss reg
  for n in 1 2 4; do
    "${mpi[@]}" -np $n "$ctrain" "$work/two.conf" --set "csv_logger.filename=$work/log$n.csv" --set train.verbose=0 \
      >"$work/out$n" 2>&1 || fail "$n ranks exited $?: $(cat "$work/out$n")"
    loss[$n]=$(col "$work/log$n.csv" loss); reg[$n]=$(col "$work/log$n.csv" val_reg_loss)
    echo "$n ranks: loss ${loss[$n]} val_reg_loss ${reg[$n]}"
  done
  for n in 2 4; do
    same "${loss[1]}" "${loss[$n]}" && same "${reg[1]}" "${reg[$n]}" && pass ||
      fail "$n ranks: loss ${loss[$n]} val_reg_loss ${reg[$n]}, one rank ${loss[1]} ${reg[1]}"
  done
  ;;
resume)
  ck=(--set "model_checkpoint.filepath=$work/ck-{epoch:02d}.h5" --set train.verbose=0)
  "$ctrain" "$work/two.conf" "${ck[@]}" --set train.epochs=4 --set "train.save_model=$work/straight.h5" >/dev/null || fail "straight"
  rm -f "$work"/ck-*.h5
  "$ctrain" "$work/two.conf" "${ck[@]}" --set train.epochs=2 >/dev/null || fail "first half"
  "$ctrain" "$work/two.conf" "${ck[@]}" --set train.epochs=4 --resume --set "train.save_model=$work/resumed.h5" >/dev/null ||
    fail "resume"
  "$ctrain" dump-weights "$work/straight.h5" --output "$work/a.txt" && "$ctrain" dump-weights "$work/resumed.h5" --output "$work/b.txt"
  cmp -s "$work/a.txt" "$work/b.txt" && pass || fail "resumed run differs"
  ;;
badinput)
  bad() { # CODE SUBSTRING ARGS...
    local code=$1 sub=$2; shift 2
    local err rc
    err=$("$ctrain" "$work/two.conf" --set train.epochs=1 --set train.verbose=0 "$@" 2>&1 >/dev/null); rc=$?
    if [ "$rc" -ne "$code" ]; then fail "$* exited $rc, expected $code ($err)"; return; fi
    grep -qF -- "$sub" <<<"$err" && pass || fail "$*: stderr lacks '$sub': $err"
  }
  bad 2 "part 2 has 100 samples, part 1 has 512" --set "data.train=$work/img.npy, $work/short.npy"
  bad 2 "targets have 6 values per sample, the model's outputs take 3" --set "data.train_labels=$work/cls.npy, $work/reg.npy, $work/cls.npy, $work/reg.npy"
  bad 2 "[train] loss: unknown output 'clss'" --set "train.loss=clss: mse"
  bad 2 "[model] outputs: unknown output layer 'nope'" --set "model.outputs=cls, nope"
  ;;
*) echo "unknown case $case"; exit 2 ;;
esac
echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
