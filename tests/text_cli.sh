#!/usr/bin/env bash
# End-to-end checks of the text features through the command line (about
# 30 s): a word model trained on 400 real reviews; predict on raw text
# (no label column) and on labelled text; export-embeddings' files against
# the vocabulary and the weights (read back with h5py); a character
# language model on a slice of the novel and `generate`; the vocabulary in
# the .h5; malformed text configs and data exit 2 naming file and line.
#   text_cli.sh CTRAIN SOURCE_DIR
set -u
ctrain=$1 src=$2
work=$(mktemp -d /tmp/ct_text.XXXXXX)
trap 'rm -rf "$work"' EXIT
fails=0 passes=0
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3
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

head -401 "$src/examples/data/fine_foods_train.tsv" > "$work/train.tsv"
head -101 "$src/examples/data/fine_foods_test.tsv" > "$work/test.tsv"
cut -f2 "$work/test.tsv" | sed '1s/.*/text/' > "$work/raw.tsv"   # text only, no label column
head -c 30000 "$src/examples/data/pride_and_prejudice.txt" > "$work/novel.txt"

cat > "$work/words.conf" <<CONF
[model]
input = 50
[embedding]
type = embedding
input_dim = 500
output_dim = 8
mask_zero = true
[pool]
type = global_avgpool1d
[out]
type = dense
units = 1
activation = sigmoid
[data]
format = text
train = train.tsv
test = test.tsv
max_tokens = 500
output_sequence_length = 50
[train]
optimizer = adam
loss = binary_crossentropy
metrics = accuracy
epochs = 2
batch_size = 16
save_model = words.h5
CONF
out=$(cd "$work" && "$ctrain" words.conf --verbose 2 2>&1); rc=$?
[ $rc -eq 0 ] && grep -q "^Test: loss" <<<"$out" && pass || fail "training the word model: $out"

# predict: raw text (no label column) and labelled text give one row per review, the same rows
"$ctrain" predict "$work/words.h5" --input "$work/raw.tsv" --output "$work/raw.csv" && pass || fail "predict on raw text"
"$ctrain" predict "$work/words.h5" --input "$work/test.tsv" --output "$work/lab.csv" && pass || fail "predict on labelled text"
[ "$(wc -l < "$work/raw.csv")" -eq 100 ] && cmp -s "$work/raw.csv" "$work/lab.csv" && pass || fail "predict rows differ ($(wc -l < "$work/raw.csv"))"

# export-embeddings: one row per token but padding, the weights of the file, the vocabulary's order
(cd "$work" && "$ctrain" export-embeddings words.h5 --layer embedding >/dev/null) && pass || fail "export-embeddings"
"$py" - "$work" <<'PY' && pass || fail "export-embeddings files"
import sys, h5py, numpy as np
w = sys.argv[1]
vec = np.loadtxt(w + "/vectors.tsv", delimiter="\t")
meta = open(w + "/metadata.tsv").read().split("\n")[:-1]
with h5py.File(w + "/words.h5", "r") as f:
    table = f["model_weights/embedding/embedding/embeddings:0"][()]
    voc = bytes(f["ctrain/vocabulary"][()]).decode().split("\n")
tokens = voc[voc.index(next(l for l in voc if l.startswith("tokens "))) + 1:-1]
assert table.shape == (500, 8), table.shape
assert vec.shape == (len(meta), 8) and len(meta) == len(tokens) + 1, (vec.shape, len(meta), len(tokens))
assert meta[0] == "[UNK]" and meta[1:] == tokens, meta[:3]
assert np.allclose(vec, table[1:len(meta) + 1], atol=1e-6)
# Keras's order: counts descending; the words of the 400 reviews
import collections, re, string
words = collections.Counter()
for line in open(w + "/train.tsv").read().split("\n")[1:]:
    if not line: continue
    t = line.split("\t", 1)[1].lower()
    t = "".join(ch for ch in t if ch not in string.punctuation)
    words.update(t.split())
# Keras's IndexLookup: np.lexsort((tokens, counts))[::-1] on the counted tokens
toks = np.array([k.encode() for k in words], dtype=object)
counts = np.array([words[k] for k in words])
ranked = [toks[i].decode() for i in np.lexsort((toks, counts))[::-1]]
assert tokens == ranked[:498], [(i, a, b) for i, (a, b) in enumerate(zip(tokens, ranked)) if a != b][:3]
PY

# a character language model and generate
cat > "$work/lm.conf" <<CONF
[model]
input = 20
[embedding]
type = embedding
input_dim = 64
output_dim = 8
[lstm]
type = lstm
units = 32
[out]
type = dense
units = 64
activation = softmax
[data]
format = text_lm
train = novel.txt
split = character
text_standardize = lower
max_tokens = 64
output_sequence_length = 20
lm_step = 5
validation_split = 0.1
[train]
optimizer = adam
loss = sparse_categorical_crossentropy
epochs = 1
batch_size = 64
save_model = lm.h5
CONF
out=$(cd "$work" && "$ctrain" lm.conf --verbose 2 2>&1) && pass || fail "training the language model: $out"
"$ctrain" generate "$work/lm.h5" --prompt "it is a truth" --length 40 --temperature 0.5 > "$work/gen.txt" 2>&1
gen=$(cat "$work/gen.txt")
# the prompt, 40 characters (the novel is ASCII) and a line break
[[ "$gen" == "it is a truth"* ]] && [ "$(wc -c < "$work/gen.txt")" -eq 54 ] && pass || fail "generate printed '$gen'"
g0=$("$ctrain" generate "$work/lm.h5" --prompt "it is a truth" --length 40 --temperature 0 2>&1)
g1=$("$ctrain" generate "$work/lm.h5" --prompt "it is a truth" --length 40 --temperature 0 2>&1)
[ "$g0" = "$g1" ] && pass || fail "temperature 0 is not deterministic"
expect_exit 2 "--prompt" "$ctrain" generate "$work/lm.h5"
expect_exit 2 "generate needs a language model" "$ctrain" generate "$work/words.h5" --prompt "good"
expect_exit 2 "no Embedding layer named 'nope'" "$ctrain" export-embeddings "$work/words.h5" --layer nope

# malformed configs and data: exit 2 naming file and line
(cd "$work" && expect_exit 2 "train.tsv:1: no column named 'review'" "$ctrain" words.conf --set data.text_column=review)
printf 'label\ttext\ngreat\t!!! ...\nother\t???\n' > "$work/punct.tsv"
(cd "$work" && expect_exit 2 "vocabulary is empty" "$ctrain" words.conf --set data.train=punct.tsv)
printf 'label\ttext\ngreat\tgood food\nother\n' > "$work/short.tsv"
(cd "$work" && expect_exit 2 "short.tsv:3" "$ctrain" words.conf --set data.train=short.tsv)
sed 's/type = global_avgpool1d/type = conv1d\nfilters = 2\nkernel_size = 3/' "$work/words.conf" > "$work/maskconv.conf"
(cd "$work" && expect_exit 2 "maskconv.conf:8" "$ctrain" maskconv.conf)
(cd "$work" && expect_exit 2 "does not support masking" "$ctrain" maskconv.conf)

echo "text_cli: $passes passed, $fails failed"
[ "$fails" -eq 0 ]
