#!/usr/bin/env bash
# model_config is real Keras JSON (issue #10 item 10), checked with
# Python's json module and h5py against the .conf files read independently
# by Python's configparser:
#  - `ctrain export-json CONF` for every example: valid JSON, Sequential
#    exactly when no layer names its inputs, one InputLayer and then every
#    config section in order with its Keras class, the keys the section
#    sets (units, filters, kernel_size, strides, padding, activation,
#    pool_size, rate, ...) with the values it sets, and for Functional
#    models inbound_nodes / input_layers / output_layers that follow the
#    sections' `inputs`;
#  - the model_config attribute of a saved .h5 (h5py) is the same JSON as
#    export-json of that file;
#  - names with quotes, backslashes, tabs and non-ASCII letters survive;
#  - a 300-layer model (well over the old 64 KiB cap) is complete.
# Usage: keras_json.sh CTRAIN SOURCE_DIR
set -u
ctrain=$1 src=$2
work=$(mktemp -d /tmp/ct_kjson.XXXXXX)
trap 'rm -rf "$work"' EXIT
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3
fails=0

for conf in "$src"/examples/*.conf; do
  grep -q '^kind *= *boosted_trees' "$conf" && continue # trees have no Keras architecture
  "$ctrain" export-json "$conf" > "$work/$(basename "$conf" .conf).json" || { echo "FAIL: export-json $conf"; fails=$((fails + 1)); }
done

# A model name that needs escaping, and a deep model.
printf '[model]\ninput = 4\nname = my "model" \\ tab\there \xc3\xa9\n[d1]\ntype = dense\nunits = 3\n[train]\nloss = mse\n' > "$work/names.conf"
"$ctrain" export-json "$work/names.conf" > "$work/names.json" || fails=$((fails + 1))
{
  printf '[model]\ninput = 8\n'
  for i in $(seq 1 300); do printf '[layer_%d]\ntype = dense\nunits = 8\nactivation = tanh\n' "$i"; done
  printf '[train]\nloss = mse\n'
} > "$work/deep.conf"
"$ctrain" export-json "$work/deep.conf" > "$work/deep.json" || fails=$((fails + 1))

# A saved model: model_config in the .h5.
"$ctrain" "$src/examples/breast_cancer.conf" --verbose 0 --set train.epochs=1 \
  --set train.save_model="$work/bc.h5" > /dev/null || { echo "FAIL: training breast_cancer"; fails=$((fails + 1)); }
"$ctrain" export-json "$work/bc.h5" > "$work/bc_h5.json" || fails=$((fails + 1))

$py - "$src" "$work" <<'PY' || fails=$((fails + 1))
import configparser, glob, json, os, sys
src, work = sys.argv[1], sys.argv[2]
errors = []
def check(cond, msg):
    if not cond: errors.append(msg)

CLASS = {"dense": "Dense", "conv2d": "Conv2D", "maxpool2d": "MaxPooling2D", "avgpool2d": "AveragePooling2D",
         "flatten": "Flatten", "dropout": "Dropout", "batch_normalization": "BatchNormalization",
         "activation": "Activation", "add": "Add", "concatenate": "Concatenate", "reshape": "Reshape",
         "global_avgpool2d": "GlobalAveragePooling2D", "global_maxpool2d": "GlobalMaxPooling2D",
         "zero_padding2d": "ZeroPadding2D", "upsampling2d": "UpSampling2D", "depthwise_conv2d": "DepthwiseConv2D",
         "separable_conv2d": "SeparableConv2D", "conv2d_transpose": "Conv2DTranspose",
         "spatial_dropout2d": "SpatialDropout2D", "channel_padding": "ChannelPadding",
         "embedding": "Embedding", "token_and_position_embedding": "TokenAndPositionEmbedding", "conv1d": "Conv1D",
         "maxpool1d": "MaxPooling1D", "avgpool1d": "AveragePooling1D", "global_maxpool1d": "GlobalMaxPooling1D",
         "global_avgpool1d": "GlobalAveragePooling1D", "simple_rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU",
         "bidirectional": "Bidirectional", "layer_normalization": "LayerNormalization",
         "multi_head_attention": "MultiHeadAttention", "masking": "Masking", "spatial_dropout1d": "SpatialDropout1D"}
# Keys every instance of a class must carry (Keras's get_config names).
REQUIRED = {"Dense": ["units", "activation", "use_bias", "kernel_initializer", "bias_initializer",
                      "kernel_regularizer", "bias_regularizer", "activity_regularizer", "kernel_constraint",
                      "bias_constraint"],
            "Conv2D": ["filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate",
                       "activation", "use_bias", "kernel_initializer", "bias_initializer"],
            "MaxPooling2D": ["pool_size", "strides", "padding", "data_format"],
            "BatchNormalization": ["axis", "momentum", "epsilon", "center", "scale", "beta_initializer",
                                   "gamma_initializer", "moving_mean_initializer", "moving_variance_initializer"],
            "Dropout": ["rate", "noise_shape", "seed"], "Flatten": ["data_format"], "Activation": ["activation"],
            "Embedding": ["input_dim", "output_dim", "mask_zero"], "LSTM": ["units", "activation", "recurrent_activation",
            "return_sequences", "go_backwards", "unit_forget_bias"], "GRU": ["units", "reset_after"],
            "Conv1D": ["filters", "kernel_size", "strides", "padding", "dilation_rate"],
            "MultiHeadAttention": ["num_heads", "key_dim", "value_dim"], "LayerNormalization": ["axis", "epsilon"]}

def ints(v):
    return [int(x) for x in v.replace(" ", "").split(",") if x]

def pair(v):
    x = ints(v)
    return x * 2 if len(x) == 1 else x

def check_model(name, conf_path, model):
    cp = configparser.ConfigParser(inline_comment_prefixes=("#",), interpolation=None)
    cp.optionxform = str
    cp.read(conf_path)
    sections = [s for s in cp.sections() if "type" in cp[s]]
    functional = any("inputs" in cp[s] for s in sections)
    check(model["class_name"] == ("Functional" if functional else "Sequential"),
          f"{name}: class_name {model['class_name']}, functional={functional}")
    cfg = model["config"]
    layers = cfg["layers"]
    check(layers[0]["class_name"] == "InputLayer", f"{name}: first layer is {layers[0]['class_name']}")
    shape = ints(cp["model"]["input"])
    check(layers[0]["config"]["batch_input_shape"] == [None] + shape, f"{name}: batch_input_shape")
    check([l["config"]["name"] for l in layers[1:]] == sections, f"{name}: layer names differ from the sections")
    prev = "input"
    for l, s in zip(layers[1:], sections):
        sec = cp[s]
        c = l["config"]
        want = CLASS[sec["type"].strip()]
        check(l["class_name"] == want, f"{name}/{s}: class {l['class_name']}, expected {want}")
        for k in REQUIRED.get(want, []):
            check(k in c, f"{name}/{s}: {want} lacks '{k}'")
        for k in ("units", "filters", "depth_multiplier"):
            if k in sec: check(c.get(k) == int(sec[k]), f"{name}/{s}: {k} {c.get(k)} != {sec[k]}")
        for k in ("kernel_size", "strides", "pool_size", "dilation_rate", "size"):
            if k in sec:
                one_d = want.endswith("1D")  # Conv1D, MaxPooling1D: one value
                check(c.get(k) == (ints(sec[k]) if one_d else pair(sec[k])), f"{name}/{s}: {k} {c.get(k)} != {sec[k]}")
        if "padding" in sec and want != "ZeroPadding2D" and want != "ChannelPadding":
            check(c.get("padding") == sec["padding"].strip(), f"{name}/{s}: padding")
        if "activation" in sec:
            check(c.get("activation") == sec["activation"].strip(), f"{name}/{s}: activation {c.get('activation')}")
        elif "activation" in c:
            default = "tanh" if want in ("SimpleRNN", "LSTM", "GRU", "Bidirectional") else "linear"
            check(c["activation"] == default, f"{name}/{s}: default activation {c['activation']}")
        if "rate" in sec: check(abs(c["rate"] - float(sec["rate"])) < 1e-7, f"{name}/{s}: rate")
        if "momentum" in sec: check(abs(c["momentum"] - float(sec["momentum"])) < 1e-7, f"{name}/{s}: momentum")
        if "use_bias" in sec: check(c["use_bias"] == (sec["use_bias"].strip() == "true"), f"{name}/{s}: use_bias")
        if want in ("MaxPooling2D", "AveragePooling2D") and "strides" not in sec:
            check(c["strides"] == c["pool_size"], f"{name}/{s}: pool strides default to pool_size")
        if functional:
            srcs = [x.strip() for x in sec["inputs"].split(",")] if "inputs" in sec else [prev]
            got = [ref[0] for ref in l["inbound_nodes"][0]]
            check(l["name"] == s and got == srcs, f"{name}/{s}: inbound_nodes {got}, expected {srcs}")
            check(all(len(ref) == 4 and ref[1:3] == [0, 0] for ref in l["inbound_nodes"][0]), f"{name}/{s}: node refs")
        prev = s
    if functional:
        check(cfg["input_layers"] == [["input", 0, 0]], f"{name}: input_layers {cfg['input_layers']}")
        check(cfg["output_layers"] == [[sections[-1], 0, 0]], f"{name}: output_layers {cfg['output_layers']}")

confs = sorted(c for c in glob.glob(os.path.join(src, "examples", "*.conf"))
               if "kind = boosted_trees" not in open(c).read())  # trees have no Keras architecture
check(len(confs) >= 5, "too few example configs")
for conf in confs:
    base = os.path.basename(conf)[:-5]
    with open(os.path.join(work, base + ".json")) as f:
        check_model(base, conf, json.load(f))

names = json.load(open(os.path.join(work, "names.json")))
check(names["config"]["name"] == 'my "model" \\ tab\there \u00e9', f"escaped name read back as {names['config']['name']!r}")
deep_text = open(os.path.join(work, "deep.json")).read()
deep = json.loads(deep_text)
check(len(deep_text) > 65536 and len(deep["config"]["layers"]) == 301, f"deep model: {len(deep_text)} bytes")
check(deep["config"]["layers"][-1]["config"]["name"] == "layer_300", "deep model: last layer")

try:
    import h5py
    with h5py.File(os.path.join(work, "bc.h5"), "r") as f:
        attr = f.attrs["model_config"]
        attr = attr.decode() if isinstance(attr, bytes) else attr
    h5 = json.loads(attr)
    exported = json.load(open(os.path.join(work, "bc_h5.json")))
    exported.pop("keras_version"), exported.pop("backend")
    check(h5 == exported, "model_config in the .h5 differs from export-json of it")
    check_model("bc.h5", os.path.join(src, "examples", "breast_cancer.conf"), h5)
except ImportError:
    errors.append("h5py is missing (launcher/setup.sh --test installs python3-h5py)")

for e in errors: print("FAIL:", e)
print(f"{len(confs)} example configs checked, {len(errors)} failures")
sys.exit(1 if errors else 0)
PY
[ "$fails" -eq 0 ] && echo "keras_json: passed" || { echo "keras_json: $fails failures"; exit 1; }
