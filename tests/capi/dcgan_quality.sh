#!/bin/bash
# The DCGAN quality check (long: only with -DCT_LONG_TESTS=ON). Train
# ctrain's Fashion-MNIST CNN classifier (examples/fashion_mnist_cnn.conf),
# train examples/capi/dcgan.c for EPOCHS epochs (data-parallel over NP
# ranks), generate 1,000 images and require that the classifier puts at
# least half of them in a class with softmax probability >= 0.9.
#   dcgan_quality.sh CTRAIN DCGAN SOURCE_DIR [EPOCHS] [NP]
set -euo pipefail
ctrain=$1 dcgan=$2 src=$3 epochs=${4:-50} np=${5:-2}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3
"$ctrain" train "$src/examples/fashion_mnist_cnn.conf" --verbose 0 --set train.save_model="$work/cnn.h5"
if [ "$np" -gt 1 ] && command -v mpirun > /dev/null; then
  mpirun --oversubscribe -np "$np" "$dcgan" --epochs "$epochs" --out "$work" --dump "$work/gen.idx"
else
  "$dcgan" --epochs "$epochs" --out "$work" --dump "$work/gen.idx"
fi
"$ctrain" predict "$work/cnn.h5" --input "$work/gen.idx" --output "$work/pred.csv"
$py - "$work/pred.csv" <<'PY'
import sys, numpy as np
p = np.loadtxt(sys.argv[1], delimiter=",", ndmin=2)
assert p.shape == (1000, 10), p.shape
confident = int((p.max(axis=1) >= 0.9).sum())
print("dcgan: %d of 1000 generated images classified with softmax >= 0.9 (need 500)" % confident)
# the criterion alone is met by a collapsed generator too: show the spread
print("dcgan: confident images per class:", np.bincount(p.argmax(axis=1)[p.max(axis=1) >= 0.9], minlength=10).tolist())
sys.exit(0 if confident >= 500 else 1)
PY
