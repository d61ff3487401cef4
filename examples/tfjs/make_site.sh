#!/usr/bin/env bash
# Build the Fashion-MNIST web page's directory:
#   examples/tfjs/make_site.sh MODEL.h5 SITE_DIR [TF_MIN_JS]
# SITE_DIR gets index.html and app.js (from here), model/ (the TF.js export of
# MODEL.h5, a model trained by examples/fashion_mnist_cnn.conf), lib/tf.min.js
# (TensorFlow.js; by default the copy npm installed under tests/tfjs) and
# samples/ (the first 10 test images of Debian's Fashion-MNIST as PNG, and
# first10.gz, the same images as IDX for `ctrain predict`). Then:
#   build/ctrain serve SITE_DIR --port 8080     # http://127.0.0.1:8080/
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
model=$1 site=$2
tfjs=${3:-$here/../../tests/tfjs/node_modules/@tensorflow/tfjs/dist/tf.min.js}
ctrain=${CTRAIN:-$here/../../build/ctrain}
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3
[ -f "$tfjs" ] || { echo "make_site: no $tfjs (run 'npm ci' in tests/tfjs, or give tf.min.js's path)" >&2; exit 2; }
mkdir -p "$site/lib"
"$ctrain" export "$model" --format tfjs_layers_model --output "$site/model" > /dev/null
cp "$here/index.html" "$here/app.js" "$site/"
cp "$tfjs" "$site/lib/tf.min.js"
$py - /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz "$site/samples" <<'PY'
import gzip, json, os, struct, sys, zlib
src, dst = sys.argv[1], sys.argv[2]
os.makedirs(dst, exist_ok=True)
img = gzip.open(src).read()
def png(path, pix):  # 8-bit grayscale PNG, written by hand (no imaging library needed)
    raw = b"".join(b"\0" + bytes(pix[r * 28:(r + 1) * 28]) for r in range(28))
    def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 28, 28, 8, 0, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
names = []
for i in range(10):
    png(f"{dst}/{i}.png", img[16 + i * 784:16 + (i + 1) * 784])
    names.append(f"{i}.png")
json.dump(names, open(f"{dst}/index.json", "w"))
with gzip.open(f"{dst}/first10.gz", "wb") as f:
    f.write(struct.pack(">IIII", 0x803, 10, 28, 28) + img[16:16 + 7840])
PY
echo "make_site: $site ready; serve it with: $ctrain serve $site --port 8080"
