#!/usr/bin/env bash
# TensorFlow.js checks (issue #14), with the real TF.js runtime
# (@tensorflow/tfjs 4.22.0, pure-JS CPU backend, from tests/tfjs/package-lock.json)
# in Node, and the web page in headless Chromium. Usage:
#   tfjs.sh CTRAIN SOURCE_DIR node|browser
#
# node:
#  - a Fashion-MNIST CNN (examples/fashion_mnist_cnn.conf, trained briefly on
#    a 4000-image slice), the MLP (fashion_mnist.conf) and a BatchNorm CNN
#    (cnn_bn.conf, trained on make_cifar's synthetic CIFAR files) exported as
#    layers models: plain, sharded (a 100000-byte shard size, so weights
#    straddle shards), uint8, uint16, float16, and graph models (resnet20 too,
#    whose conv + BN pairs fold); each loaded with tf.loadLayersModel /
#    tf.loadGraphModel and compared with `ctrain predict`: float32 within
#    1e-5; quantized weights within their bound (scale / 2, half an ulp) as
#    tf.io.decodeWeights reads them; quantized models within 1e-5 of ctrain
#    predict on the same model imported back (the dequantized weights), and
#    uint8 with the same argmax as the float32 model on >= 99% of the
#    10000 test images;
#  - every layers model imports back (`ctrain import`) and predicts what
#    TF.js predicts; the imported CNN fine-tunes (loss goes down) and
#    evaluates;
#  - a CNN trained and saved by TF.js itself imports and predicts the same;
#  - every example's `ctrain export-json` is read by tf.models.modelFromJSON
#    with the parameter count of `ctrain summary`;
#  - layers TF.js cannot run are refused with their name.
# browser: examples/tfjs/ served by `ctrain serve` on 127.0.0.1, opened in
#  Debian's chromium through playwright-core; the page loads the exported
#  CNN and classifies 10 test images as `ctrain predict` does.
set -u
ctrain=$(readlink -f "$1") src=$(readlink -f "$2") mode=$3
here=$src/tests/tfjs
work=$(mktemp -d /tmp/ct_tfjs.XXXXXX)
server_pid=
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
run() { "$@" || fail "$*"; }
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3
fm=/usr/share/datasets/fashion-mnist
[ -f "$fm/t10k-images-idx3-ubyte.gz" ] || { echo "FAIL: Debian's dataset-fashion-mnist is not installed"; exit 1; }
[ -d "$here/node_modules/@tensorflow/tfjs" ] || { echo "FAIL: run 'npm ci' in tests/tfjs (launcher/setup.sh --test does)"; exit 1; }
export OMP_NUM_THREADS=2
node_check() { (cd "$here" && node check.js "$@" 2>"$work/node.err") || { cat "$work/node.err" | grep -v "^$" | tail -5; return 1; }; }
rescale=0.00392156862745098
q() { "$ctrain" "$@" > /dev/null; }

# A 4000-image training slice of Fashion-MNIST (IDX, gzip).
$py - "$fm" "$work" <<'PY'
import gzip, struct, sys
src, dst = sys.argv[1], sys.argv[2]
n = 4000
img = gzip.open(f"{src}/train-images-idx3-ubyte.gz").read()
lab = gzip.open(f"{src}/train-labels-idx1-ubyte.gz").read()
with gzip.open(f"{dst}/train-images.gz", "wb") as f:
    f.write(struct.pack(">IIII", 0x803, n, 28, 28) + img[16:16 + n * 784])
with gzip.open(f"{dst}/train-labels.gz", "wb") as f:
    f.write(struct.pack(">II", 0x801, n) + lab[8:8 + n])
PY
slice=(--set data.train="$work/train-images.gz" --set data.train_labels="$work/train-labels.gz"
       --set data.test="$fm/t10k-images-idx3-ubyte.gz" --set data.test_labels="$fm/t10k-labels-idx1-ubyte.gz")

train_fashion() { # CONF OUT.h5 [EPOCHS]
  run q "$src/examples/$1.conf" --verbose 0 "${slice[@]}" --set train.epochs=${3:-2} --set train.save_model="$2"
}

if [ "$mode" = browser ]; then
  train_fashion fashion_mnist_cnn "$work/cnn.h5" 1
  CTRAIN=$ctrain run bash "$src/examples/tfjs/make_site.sh" "$work/cnn.h5" "$work/site" > /dev/null
  run q predict "$work/cnn.h5" --input "$work/site/samples/first10.gz" --output "$work/first10.csv"
  port=$(( 20000 + RANDOM % 20000 ))
  "$ctrain" serve "$work/site" --port "$port" > "$work/serve.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 100); do grep -q "serving" "$work/serve.log" 2>/dev/null && break; sleep 0.1; done
  # loopback only: the server is not reachable through another address
  grep -q "127.0.0.1:$port" "$work/serve.log" || fail "serve did not start: $(cat "$work/serve.log")"
  (cd "$here" && node browser.js "http://127.0.0.1:$port/" "$work/first10.csv" "${SCREENSHOT:-$work/shot.png}") || fail "browser check"
  [ "$fails" -eq 0 ] && echo "tfjs browser: passed" || { echo "tfjs browser: $fails failures"; exit 1; }
  exit 0
fi

# --- models ------------------------------------------------------------------
train_fashion fashion_mnist_cnn "$work/cnn.h5"
train_fashion fashion_mnist "$work/mlp.h5"
mkdir -p "$work/cifar"
"$(dirname "$ctrain")/tests/make_cifar" "$work/cifar" 256 256 1 > /dev/null || fail "make_cifar"
cifar=(--set data.train="$work/cifar/data_batch_1.bin" --set data.test="$work/cifar/test_batch.bin"
       --set data.validation_split=0 --set train.epochs=1 --verbose 0)
run q "$src/examples/cnn_bn.conf" "${cifar[@]}" --set train.save_model="$work/bn.h5"
run q "$src/examples/resnet20.conf" "${cifar[@]}" --set train.batch_size=64 --set train.learning_rate=0.01 --set train.save_model="$work/resnet.h5"

# Noise images in CIFAR format: the synthetic classes are so easy that the
# trained models' softmax saturates on them; noise keeps every output live.
$py -c "import random, sys; random.seed(7); sys.stdout.buffer.write(b''.join(bytes([i % 10] + [random.randrange(256) for _ in range(3072)]) for i in range(256)))" > "$work/noise.bin"
test_x="$fm/t10k-images-idx3-ubyte.gz"
run q predict "$work/cnn.h5" --input "$test_x" --output "$work/cnn.csv"
run q predict "$work/mlp.h5" --input "$test_x" --output "$work/mlp.csv"
run q predict "$work/bn.h5" --input "$work/noise.bin" --output "$work/bn.csv"
run q predict "$work/resnet.h5" --input "$work/noise.bin" --output "$work/resnet.csv"

exp() { run q export "$@"; }
exp "$work/cnn.h5" --format tfjs_layers_model --output "$work/cnn_f32"
exp "$work/cnn.h5" --format tfjs_layers_model --output "$work/cnn_shard" --weight-shard-size-bytes 100000
for qt in uint8 uint16 float16; do exp "$work/cnn.h5" --format tfjs_layers_model --output "$work/cnn_$qt" --quantize $qt; done
exp "$work/cnn.h5" --format tfjs_layers_model --output "$work/cnn_part" --quantize uint8 'dense*/kernel' conv2d/kernel
exp "$work/cnn.h5" --format tfjs_graph_model --output "$work/cnn_graph"
exp "$work/cnn.h5" --format tfjs_graph_model --output "$work/cnn_graph_u8" --quantize uint8 --weight-shard-size-bytes 65536
exp "$work/mlp.h5" --format tfjs_layers_model --output "$work/mlp_f32"
exp "$work/bn.h5" --format tfjs_layers_model --output "$work/bn_f32"
exp "$work/bn.h5" --format tfjs_graph_model --output "$work/bn_graph"
exp "$work/resnet.h5" --format tfjs_graph_model --output "$work/resnet_graph"

# The shard files are the weight stream cut every 100000 bytes.
n=$(ls "$work/cnn_shard"/group1-shard*of*.bin | wc -l)
total=$(cat "$work/cnn_shard"/group1-shard*.bin | wc -c)
[ "$n" -eq $(( (total + 99999) / 100000 )) ] && cmp -s <(cat $(ls "$work/cnn_shard"/group1-shard*.bin | sort -V)) "$work/cnn_f32/group1-shard1of1.bin" ||
  fail "sharding: $n shards of $total bytes differ from the single-shard stream"

idx=(--format idx --input "$test_x" --rescale "$rescale")
cif=(--format cifar10 --input "$work/noise.bin" --rescale "$rescale")
run node_check predict --kind layers --model "$work/cnn_f32/model.json" "${idx[@]}" --n 500 --expect "$work/cnn.csv" --tol 1e-5
run node_check predict --kind layers --model "$work/cnn_shard/model.json" "${idx[@]}" --n 500 --expect "$work/cnn.csv" --tol 1e-5
run node_check predict --kind layers --model "$work/mlp_f32/model.json" "${idx[@]}" --n 500 --expect "$work/mlp.csv" --tol 1e-5
run node_check predict --kind layers --model "$work/bn_f32/model.json" "${cif[@]}" --n 256 --expect "$work/bn.csv" --tol 1e-5
run node_check predict --kind graph --model "$work/cnn_graph/model.json" "${idx[@]}" --n 500 --expect "$work/cnn.csv" --tol 1e-5
run node_check predict --kind graph --model "$work/bn_graph/model.json" "${cif[@]}" --n 256 --expect "$work/bn.csv" --tol 1e-5
run node_check predict --kind graph --model "$work/resnet_graph/model.json" "${cif[@]}" --n 256 --expect "$work/resnet.csv" --tol 1e-5
# resnet20's conv + BN pairs are folded: no BatchNormalization op is left.
grep -q '"op": "Mul"' "$work/resnet_graph/model.json" && fail "resnet20 graph model still has BatchNormalization (Mul) nodes"

for qt in uint8 uint16 float16 part; do
  run node_check bound --float "$work/cnn_f32/model.json" --quant "$work/cnn_$qt/model.json"
  # Imported back, the quantized model is the dequantized weights: TF.js and
  # ctrain agree on it to float32 rounding.
  run q import "$work/cnn_$qt/model.json" --output "$work/cnn_${qt}_back.h5" --set data.format=idx --set augment.rescale=$rescale
  run q predict "$work/cnn_${qt}_back.h5" --input "$test_x" --output "$work/cnn_${qt}_back.csv"
  run node_check predict --kind layers --model "$work/cnn_$qt/model.json" "${idx[@]}" --n 500 --expect "$work/cnn_${qt}_back.csv" --tol 1e-5
done
run node_check bound --float "$work/cnn_graph/model.json" --quant "$work/cnn_graph_u8/model.json"
run node_check predict --kind layers --model "$work/cnn_uint8/model.json" "${idx[@]}" --n 10000 --expect "$work/cnn.csv" --argmax 0.99
run node_check predict --kind graph --model "$work/cnn_graph_u8/model.json" "${idx[@]}" --n 2000 --expect "$work/cnn.csv" --argmax 0.99
for qt in uint16 float16; do
  run node_check predict --kind layers --model "$work/cnn_$qt/model.json" "${idx[@]}" --n 500 --expect "$work/cnn.csv" --argmax 0.999
done

# Import: layers models back into ctrain predict what TF.js and ctrain did.
run q import "$work/cnn_shard/model.json" --output "$work/cnn_back.h5" --config "$work/cnn_back.conf" \
  --set data.format=idx --set augment.rescale=$rescale --set train.metrics=accuracy
run q predict "$work/cnn_back.h5" --input "$test_x" --output "$work/cnn_back.csv"
# (not bit for bit: the imported config has Keras's default batch_size 32, the
# original 64, and predict's batch blocking changes float rounding)
$py - "$work/cnn.csv" "$work/cnn_back.csv" <<'PY' || fail "the imported float32 CNN predicts differently from the original"
import sys, numpy as np
a, b = (np.loadtxt(f, delimiter=",") for f in sys.argv[1:])
d = abs(a - b).max()
print(f"imported CNN vs original: max |difference| {d:.3g} over {a.shape[0]} test images")
sys.exit(0 if a.shape == b.shape and d <= 1e-5 and (a.argmax(1) == b.argmax(1)).all() else 1)
PY
# ...evaluates, and fine-tunes from the imported weights (--config wrote the
# config with [model] weights): the first epoch's loss is that of a trained
# model, and the test loss does not get worse.
ev=$("$ctrain" evaluate "$work/cnn_back.h5" "${slice[@]}" --verbose 0 2>&1) || fail "evaluate imported: $ev"
before=$(sed -n 's/.*loss: \([0-9.]*\).*/\1/p' <<<"$ev" | head -1)
ft=$("$ctrain" train "$work/cnn_back.conf" "${slice[@]}" --set train.epochs=1 --set train.optimizer=adam \
     --set train.learning_rate=0.0001 --verbose 2 2>&1) || fail "fine-tune: $ft"
first=$(grep -m1 ' loss: ' <<<"$ft" | sed 's/.* loss: \([0-9.]*\).*/\1/')
after=$(grep '^Test:' <<<"$ft" | sed 's/.* loss: \([0-9.]*\).*/\1/')
echo "imported CNN: test loss $before; fine-tuning epoch loss $first, test loss after $after"
awk -v b="$before" -v f="$first" -v a="$after" 'BEGIN { exit !(b != "" && f != "" && a != "" && f < 1.0 && a <= b + 0.02) }' ||
  fail "fine-tuning the imported model: test loss $before -> $after, first epoch loss $first"

# A model trained and saved by TF.js itself.
run node_check train --out "$work/tfjs_model" --images "$work/train-images.gz" --labels "$work/train-labels.gz" --n 2000 --pred "$work/tfjs_pred.csv"
run q import "$work/tfjs_model/model.json" --output "$work/tfjs_model.h5" --set data.format=idx --set augment.rescale=$rescale
run q predict "$work/tfjs_model.h5" --input "$work/train-images.gz" --output "$work/tfjs_in_ctrain.csv"
run node_check predict --kind layers --model "$work/tfjs_model/model.json" --format idx --input "$work/train-images.gz" \
  --rescale "$rescale" --n 500 --expect "$work/tfjs_in_ctrain.csv" --tol 1e-5

# Keras JSON of every example, read by tf.models.modelFromJSON (ctrain's
# ChannelPadding, Keras's TokenAndPositionEmbedding and MultiHeadAttention
# registered as TF.js custom layers in check.js, as TF.js asks for classes
# it does not ship).
items=()
for conf in "$src"/examples/*.conf; do
  b=$(basename "$conf" .conf)
  grep -q '^kind *= *boosted_trees' "$conf" && continue # no Keras architecture
  "$ctrain" export-json "$conf" > "$work/$b.json" || fail "export-json $b"
  if grep -q '"reset_after": true' "$work/$b.json"; then
    # TF.js cannot build a GRU with reset_after = true (Keras's default): the
    # export refuses it by name, and the same model with reset_after = false
    # is what modelFromJSON reads.
    err=$("$ctrain" export "$conf" --format tfjs_layers_model --output "$work/no_$b" 2>&1)
    [ $? -eq 2 ] && grep -q "reset_after" <<<"$err" || fail "GRU with reset_after = true exported to TF.js: $err"
    sed 's/^type *= *gru *$/&\nreset_after = false/' "$conf" > "$work/$b.conf"
    conf=$work/$b.conf
    "$ctrain" export-json "$conf" > "$work/$b.json" || fail "export-json $b (reset_after = false)"
  fi
  params=$("$ctrain" summary "$conf" | sed -n 's/^Total params: \([0-9,]*\).*/\1/p' | tr -d ,)
  items+=("$work/$b.json:$params")
done
run node_check fromjson "${items[@]}"

# Refusals name the layer.
err=$("$ctrain" export "$work/resnet.h5" --format tfjs_layers_model --output "$work/no" 2>&1); rc=$?
[ $rc -eq 2 ] && grep -q "ChannelPadding" <<<"$err" && [ ! -e "$work/no/model.json" ] || fail "resnet20 layers export: rc $rc: $err"
err=$("$ctrain" export "$work/cnn.h5" --format tfjs_layers_model --output "$work/no" --quantize uint8 nothing/like_this 2>&1); rc=$?
[ $rc -eq 2 ] && grep -q "matches no float32 weight" <<<"$err" || fail "bad quantize pattern: rc $rc: $err"

[ "$fails" -eq 0 ] && echo "tfjs node: passed" || { echo "tfjs node: $fails failures"; exit 1; }
