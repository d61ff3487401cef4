"""The bad-input cases (see run.py). Each case is a dict:

  name     "class/what" (the class groups the summary line)
  files    {relative path: str | bytes | callable(path)}, created first
  prepare  [[argv], ...] run before (e.g. training a model to corrupt)
  cmd      argv; {ctrain}, {w} (the case's directory), {ex} (examples/)
  code     the expected exit code
  msg      a regex stderr must match: it names the file and the line or
           offset (or sample), and says what was expected
  keep     files outside {w} that must be unchanged (everything inside
           {w} is checked anyway)
  absent / present   files that must not / must exist afterwards
  tmpfs    size of a tmpfs mounted at {w}/full (root only, else SKIPPED)
  signal   (glob, signal): sent as soon as a file matching glob exists

The data files are written here byte by byte (no numpy needed), except
HDF5 data files, which need h5py (the case is SKIPPED without it)."""
import os
import signal
import struct
import zlib

# --- tiny data sets ------------------------------------------------------------

N = 24  # samples
F = 4   # features


def rows(n=N, f=F, label=True, bad=None):
    """CSV text: a header line, then sample i with features (i + k) / 10
    and label i % 2; bad is {sample: "text of the row"} to replace rows."""
    out = []
    for i in range(n):
        vals = ["%.2f" % ((i + k) / 10) for k in range(f)]
        if label:
            vals.append(str(i % 2))
        out.append(",".join(vals))
    for r, text in (bad or {}).items():
        out[r] = text
    head = ["f%d" % k for k in range(f)] + (["label"] if label else [])
    return ",".join(head) + "\n" + "\n".join(out) + "\n"


CSV = rows()

CONF = """[model]
input = 4

[hidden]
type = dense
units = 3
activation = relu

[out]
type = dense
units = 2
activation = softmax

[data]
format = csv
train = d.csv

[train]
optimizer = adam
loss = sparse_categorical_crossentropy
metrics = accuracy
batch_size = 8
epochs = 1
verbose = 0
"""


def conf(**sections):
    """CONF with keys replaced or added: conf(train={"epochs": "2"},
    data={"format": "npy", "train": "x.npy"}); a value None drops the key."""
    lines = CONF.splitlines()
    for sec, keys in sections.items():
        head = "[%s]" % sec
        if head not in lines:
            lines += ["", head]
        at = lines.index(head)
        end = at + 1
        while end < len(lines) and not lines[end].startswith("["):
            end += 1
        body = lines[at + 1:end]
        for k, v in keys.items():
            body = [b for b in body if not b.startswith(k + " =")]
            if v is not None:
                body.insert(0, "%s = %s" % (k, v))
        lines[at + 1:end] = body
    return "\n".join(lines) + "\n"


def npy(dtype, shape, values):
    """A NumPy .npy v1.0 file: dtype '<f4', '<i8', '|u1'; values flat."""
    hdr = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (
        dtype, "".join("%d," % d for d in shape) if len(shape) == 1 else ", ".join(str(d) for d in shape))
    pad = 64 - (10 + len(hdr) + 1) % 64
    hdr = hdr + " " * pad + "\n"
    fmt = {"<f4": "<%df", "<i8": "<%dq", "|u1": "%dB", "<f8": "<%dd"}[dtype]
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode() + struct.pack(fmt % len(values), *values)


def idx(shape, values, code=0x08):
    """An IDX file (big-endian dims); code 0x08 unsigned bytes."""
    fmt = {0x08: "%dB", 0x0D: ">%df"}[code]
    return struct.pack(">BBBB", 0, 0, code, len(shape)) + struct.pack(">%dI" % len(shape), *shape) + \
        struct.pack(fmt % len(values), *values)


def png_gray(w, h, value):
    raw = b"".join(b"\0" + bytes([value] * w) for _ in range(h))

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def cifar(n, label_at=None):
    """CIFAR-10 binary records: label byte + 3072 pixel bytes."""
    out = b""
    for i in range(n):
        lab = label_at.get(i, i % 10) if label_at else i % 10
        out += bytes([lab]) + bytes([(i * 7 + k) % 256 for k in range(8)]) * 384
    return out


def h5(datasets):
    """A callable that writes an HDF5 data file with h5py (or skips)."""
    def write(path):
        try:
            import h5py
            import numpy as np
        except ImportError:
            from run import Skip
            raise Skip("h5py is not installed")
        with h5py.File(path, "w") as f:
            for k, (dtype, shape, vals) in datasets.items():
                f[k] = np.array(vals, dtype=dtype).reshape(shape)
    return write


def h5_edit(fn):
    """A prepare step as a callable file: fn(h5py, numpy, dir)."""
    def write(path):
        try:
            import h5py
            import numpy as np
        except ImportError:
            from run import Skip
            raise Skip("h5py is not installed")
        fn(h5py, np, os.path.dirname(path))
        with open(path, "w") as f:
            f.write("edited\n")
    return write


X8 = [float((i * 3 + k) % 17) / 17 for i in range(N) for k in range(64)]
Y = [i % 2 for i in range(N)]

IMG_CONF = conf(model={"input": "8, 8"}, hidden={"type": "flatten", "units": None, "activation": None},
                data={"format": "npy", "train": "x.npy", "train_labels": "y.npy"})

# a trained model in {w}/m.h5 (and the data and config it came from)
TRAIN = ["{ctrain}", "c.conf", "--set", "train.save_model={w}/m.h5"]
BASE = {"d.csv": CSV, "c.conf": CONF}


def with_model(**more):
    f = dict(BASE)
    f.update(more)
    return f


def flip_weight(h5py, np, d):
    """One bit of a stored weight flipped in the file's bytes."""
    with h5py.File(os.path.join(d, "m.h5"), "r") as f:
        off = f["model_weights/hidden/hidden/kernel:0"].id.get_chunk_info(0).byte_offset
    b = bytearray(open(os.path.join(d, "m.h5"), "rb").read())
    b[off + 5] ^= 0x10
    open(os.path.join(d, "flip.h5"), "wb").write(b)


def flip_trees(h5py, np, d):
    """One bit of the trees' leaf values flipped in the file's bytes."""
    with h5py.File(os.path.join(d, "t.h5"), "r") as f:
        ds = f["trees/edges"]
        off = ds.id.get_chunk_info(0).byte_offset
    b = bytearray(open(os.path.join(d, "t.h5"), "rb").read())
    b[off + 3] ^= 0x04
    open(os.path.join(d, "flip.h5"), "wb").write(b)


def nan_weight(value):
    def edit(h5py, np, d):
        import shutil
        shutil.copy(os.path.join(d, "m.h5"), os.path.join(d, "bad.h5"))
        with h5py.File(os.path.join(d, "bad.h5"), "r+") as f:
            ds = f["model_weights/out/out/kernel:0"]
            a = ds[()]
            a[1, 0] = value
            ds[...] = a
    return edit


def cases(ctrain, src):
    ex = os.path.join(src, "examples")
    C = []

    def add(name, cmd, code, msg=None, **kw):
        c = {"name": name, "cmd": cmd, "code": code}
        if msg is not None:
            c["msg"] = msg
        c.update(kw)
        C.append(c)

    # --- command line --------------------------------------------------------
    add("cli/no-target", ["{ctrain}", "train"], 2, r"train needs a config file or a model file")
    add("cli/unknown-option", ["{ctrain}", "train", "c.conf", "--bogus"], 2, r"unknown option '--bogus'", files=BASE)
    add("cli/typo-command", ["{ctrain}", "trian", "c.conf"], 2, r"unknown command 'trian'; did you mean 'train'\?",
        files=BASE)
    add("cli/typo-evaluate", ["{ctrain}", "evalute", "m.h5"], 2, r"did you mean 'evaluate'\?")
    add("cli/help-unknown", ["{ctrain}", "help", "trian"], 2, r"unknown command 'trian'; did you mean 'train'\?")
    add("cli/help-train", ["{ctrain}", "help", "train"], 0, stdout=r"^usage: ctrain train CONF.*--resume")
    add("cli/train-help", ["{ctrain}", "train", "--help"], 0, stdout=r"^usage: ctrain train CONF")
    add("cli/predict-help", ["{ctrain}", "predict", "-h"], 0, stdout=r"^usage: ctrain predict MODEL.h5 --input")
    add("cli/version", ["{ctrain}", "version"], 0, stdout=r"^ctrain \d+\.\d+")
    add("cli/dash-version", ["{ctrain}", "--version"], 0, stdout=r"^ctrain \d+\.\d+")
    add("cli/threads-text", ["{ctrain}", "train", "c.conf", "--threads", "x"], 2, r"--threads needs an integer >= 1, got 'x'",
        files=BASE)
    add("cli/threads-zero", ["{ctrain}", "train", "c.conf", "--threads", "0"], 2, r"--threads needs an integer >= 1",
        files=BASE)
    add("cli/threads-huge", ["{ctrain}", "train", "c.conf", "--threads", "100000"], 2,
        r"--threads takes 1 to 1024, got '100000'", files=BASE)
    add("config/threads-huge", ["{ctrain}", "train", "c.conf", "--set", "train.threads=100000"], 2,
        r"<--set>: \[train\] threads: must be in \[1, 1024\], got 100000", files=BASE)
    add("config/bench-batch-huge", ["{ctrain}", "bench", "c.conf", "--set", "train.batch_size=2000000000"], 2,
        r"c\.conf: bench: \[train\] batch_size = 2000000000 of 4 values per sample is more than", files=BASE)
    add("cli/verbose-3", ["{ctrain}", "train", "c.conf", "--verbose", "3"], 2, r"--verbose takes 0, 1 or 2, got '3'",
        files=BASE)
    add("cli/steps-negative", ["{ctrain}", "bench", "c.conf", "--steps", "-4"], 2, r"--steps needs an integer >= 1",
        files=BASE)
    add("cli/set-no-dot", ["{ctrain}", "summary", "c.conf", "--set", "epochs=3"], 2,
        r"<--set>.*'epochs=3' is not SECTION.KEY=VALUE", files=BASE)
    add("cli/set-missing", ["{ctrain}", "summary", "c.conf", "--set"], 2, r"--set needs SECTION.KEY=VALUE", files=BASE)
    add("cli/set-unknown-key", ["{ctrain}", "summary", "c.conf", "--set", "train.epoch=3"], 2,
        r"<--set>.*epoch.*epochs", files=BASE)
    add("cli/set-unset-required", ["{ctrain}", "train", "c.conf", "--set", "train.loss="], 2,
        r"c\.conf: \[train\] needs loss", files=BASE)
    add("cli/set-unset-save-model", ["{ctrain}", "train", "c.conf", "--set", "train.save_model="], 0,
        files=dict(BASE, **{"c.conf": conf(train={"save_model": "out.h5"})}), absent=["out.h5"])
    add("cli/unexpected-argument", ["{ctrain}", "train", "c.conf", "other.conf"], 2,
        r"unexpected argument 'other.conf' after 'c.conf'", files=BASE)
    add("cli/resume-missing", ["{ctrain}", "train", "c.conf", "--resume", "missing.h5"], 2,
        r"missing\.h5: cannot open: No such file or directory", files=BASE)
    add("cli/resume-not-hdf5", ["{ctrain}", "train", "c.conf", "--resume", "d.csv"], 2,
        r"d\.csv: offset 0: not an HDF5 file", files=BASE)
    add("cli/missing-config", ["{ctrain}", "summary", "nothere.conf"], 2,
        r"nothere\.conf: cannot open: No such file or directory")
    add("cli/config-is-directory", ["{ctrain}", "summary", "{w}"], 2, r"ct_bad_\w+: cannot (open|read): Is a directory")
    add("cli/summary-without-train", ["{ctrain}", "summary", "c.conf"], 0, stdout=r"Total params: 23\b",
        files={"c.conf": "[model]\ninput = 4\n[hidden]\ntype = dense\nunits = 3\n[out]\ntype = dense\nunits = 2\n"})
    add("cli/predict-needs-input", ["{ctrain}", "predict", "m.h5"], 2, r"predict needs --input FILE")
    add("cli/predict-of-config", ["{ctrain}", "predict", "c.conf", "--input", "d.csv"], 2,
        r"predict needs a model file written by training.*'c\.conf'", files=BASE)
    add("cli/verbose-2-no-bar", ["{ctrain}", "train", "c.conf", "--verbose", "2"], 0, files=BASE,
        stdout=r"^3/3 - \d+s - loss: [0-9.]+ - accuracy: [0-9.]+ - \d+s/epoch - \d+[mu]?s/step$", not_stdout=r"\[=")

    # --- model files ----------------------------------------------------------
    add("model/missing", ["{ctrain}", "evaluate", "gone.h5"], 2, r"gone\.h5: cannot open: No such file or directory")
    add("model/missing-predict", ["{ctrain}", "predict", "gone.h5", "--input", "d.csv"], 2,
        r"gone\.h5: cannot open: No such file", files=BASE)
    add("model/missing-dump", ["{ctrain}", "dump-weights", "gone.h5"], 2, r"gone\.h5: cannot open: No such file")
    add("model/not-hdf5", ["{ctrain}", "evaluate", "t.h5"], 2, r"t\.h5: offset 0: not an HDF5 file",
        files={"t.h5": "plain text\n"})
    add("model/empty", ["{ctrain}", "summary", "e.h5"], 2, r"e\.h5: offset 0: not an HDF5 file", files={"e.h5": ""})
    add("model/truncated", ["{ctrain}", "evaluate", "cut.h5"], 2, r"cut\.h5: .*(truncated|damaged)", files=with_model(),
        prepare=[TRAIN, ["sh", "-c", "head -c 3000 m.h5 > cut.h5"]])
    add("model/bit-flip", ["{ctrain}", "evaluate", "flip.h5"], 2,
        r"flip\.h5: 'model_weights/hidden/hidden/kernel:0' fails its Fletcher32 checksum",
        files=with_model(), prepare=[TRAIN], post_files={"flip.stamp": h5_edit(flip_weight)})
    add("model/bit-flip-dump", ["{ctrain}", "dump-weights", "flip.h5"], 2, r"flip\.h5: .*fails its Fletcher32 checksum",
        files=with_model(), prepare=[TRAIN], post_files={"flip.stamp": h5_edit(flip_weight)})
    add("model/nan-weight", ["{ctrain}", "evaluate", "bad.h5"], 2,
        r"bad\.h5: 'model_weights/out/out/kernel:0' holds NaN at index 2; expected finite", files=with_model(),
        prepare=[TRAIN], post_files={"nan.stamp": h5_edit(nan_weight(float("nan")))})
    add("model/inf-weight", ["{ctrain}", "predict", "bad.h5", "--input", "d.csv"], 2,
        r"bad\.h5: .*holds an infinity at index 2", files=with_model(), prepare=[TRAIN],
        post_files={"inf.stamp": h5_edit(nan_weight(float("inf")))})
    add("model/weights-nan-into-config", ["{ctrain}", "evaluate", "c.conf", "--set", "model.weights=bad.h5"], 2,
        r"bad\.h5: .*holds NaN", files=with_model(), prepare=[TRAIN],
        post_files={"nan.stamp": h5_edit(nan_weight(float("nan")))})
    add("model/weights-shape-mismatch", ["{ctrain}", "evaluate", "c.conf", "--set", "model.weights=m.h5", "--set",
                                         "hidden.units=5"], 2,
        r"m\.h5: 'model_weights/hidden/hidden/kernel:0' has shape 4x3, the model expects 4x5",
        files=with_model(), prepare=[TRAIN])
    add("model/weights-missing", ["{ctrain}", "train", "c.conf", "--set", "model.weights=none.h5"], 2,
        r"none\.h5: cannot open: No such file", files=BASE)
    add("model/resume-other-optimizer", ["{ctrain}", "train", "c.conf", "--resume", "m.h5", "--set",
                                         "train.optimizer=sgd"], 2, r"m\.h5: the optimizer state is for another",
        files=with_model(), prepare=[TRAIN])
    add("model/weights-only-predict", ["{ctrain}", "predict", "w.h5", "--input", "d.csv"], 2,
        r"w\.h5: no ctrain/config: this is not a whole-model file", files=with_model(),
        prepare=[["{ctrain}", "c.conf", "--set", "model_checkpoint.filepath=w.h5",
                  "--set", "model_checkpoint.save_weights_only=true"]])

    # --- outputs: never one of the inputs, checked before the first step ------
    add("output/dump-over-model", ["{ctrain}", "dump-weights", "m.h5", "--output", "m.h5"], 2,
        r"--output = m\.h5: is also an input of this run", files=with_model(), prepare=[TRAIN])
    add("output/predict-over-model", ["{ctrain}", "predict", "m.h5", "--input", "d.csv", "--output", "m.h5"], 2,
        r"--output = m\.h5: is also an input of this run", files=with_model(), prepare=[TRAIN])
    add("output/predict-over-input", ["{ctrain}", "predict", "m.h5", "--input", "d.csv", "--output", "./d.csv"], 2,
        r"--output = \./d\.csv: is also an input of this run \(d\.csv\)", files=with_model(), prepare=[TRAIN])
    add("output/predict-into-directory", ["{ctrain}", "predict", "m.h5", "--input", "d.csv", "--output", "{w}"], 2,
        r"--output = .*ct_bad_\w+: is a directory", files=with_model(), prepare=[TRAIN])
    add("output/save-model-over-data", ["{ctrain}", "train", "c.conf", "--set", "train.save_model=d.csv"], 2,
        r"\[train\] save_model = d\.csv: is also an input of this run", files=BASE)
    add("output/save-model-over-config", ["{ctrain}", "train", "c.conf", "--set", "train.save_model=c.conf"], 2,
        r"\[train\] save_model = c\.conf: is also an input", files=BASE)
    add("output/csv-logger-over-data", ["{ctrain}", "train", "c.conf", "--set", "csv_logger.filename=d.csv"], 2,
        r"\[csv_logger\] filename = d\.csv: is also an input of this run", files=BASE)
    add("output/checkpoint-over-data", ["{ctrain}", "train", "c.conf", "--set", "model_checkpoint.filepath=d.csv"], 2,
        r"\[model_checkpoint\] filepath = d\.csv: is also an input", files=BASE)
    add("output/checkpoint-over-resume", ["{ctrain}", "train", "c.conf", "--resume", "m.h5", "--set",
                                          "model_checkpoint.filepath=m.h5"], 2,
        r"\[model_checkpoint\] filepath = m\.h5: is also an input of this run", files=with_model(), prepare=[TRAIN])
    add("output/save-model-over-weights", ["{ctrain}", "train", "c.conf", "--set", "model.weights=m.h5", "--set",
                                           "train.save_model=m.h5"], 2,
        r"\[train\] save_model = m\.h5: is also an input", files=with_model(), prepare=[TRAIN])
    add("output/save-model-is-directory", ["{ctrain}", "train", "c.conf", "--set", "train.save_model=sub"], 2,
        r"\[train\] save_model = sub: is a directory", files=dict(BASE, **{"sub/x": "x"}))
    add("output/save-model-under-file", ["{ctrain}", "train", "c.conf", "--set", "train.save_model=d.csv/m.h5"], 2,
        r"\[train\] save_model: d\.csv/m\.h5: cannot create d\.csv: d\.csv is not a directory", files=BASE)
    add("output/checkpoint-trailing-slash", ["{ctrain}", "train", "c.conf", "--set", "model_checkpoint.filepath=ck/"],
        2, r"\[model_checkpoint\] filepath = ck/: names a directory; expected a file name", files=BASE)
    add("output/save-model-new-directory", ["{ctrain}", "train", "c.conf", "--set", "train.save_model=a/b/m.h5"], 0,
        files=BASE, present=["a/b/m.h5"])
    add("output/bad-template-field", ["{ctrain}", "train", "c.conf", "--set", "model_checkpoint.filepath=ck-{epch}.h5"],
        2, r"\[model_checkpoint\] filepath: no value named 'epch'", files=BASE, absent=["ck-1.h5"])
    add("output/bad-template-format", ["{ctrain}", "train", "c.conf", "--set",
                                       "model_checkpoint.filepath=ck-{epoch:x}.h5"], 2,
        r"format '\{epoch:x\}' is not supported", files=BASE)
    add("output/unclosed-template", ["{ctrain}", "train", "c.conf", "--set", "model_checkpoint.filepath=ck-{epoch.h5"],
        2, r"filepath 'ck-\{epoch\.h5': unclosed '\{'", files=BASE)
    add("output/tensorboard-under-file", ["{ctrain}", "train", "c.conf", "--set", "tensorboard.log_dir=d.csv"], 2,
        r"\[tensorboard\] log_dir: d\.csv/train/events: cannot create directory d\.csv/train: Not a directory", files=BASE)
    add("output/read-only-directory", ["{ctrain}", "train", "c.conf", "--set", "train.save_model=ro/m.h5"], 2,
        r"\[train\] save_model = ro/m\.h5: cannot write into ro: Permission denied", files=BASE,
        prepare=[["mkdir", "ro"], ["chmod", "555", "ro"]], needs_non_root=True)

    # --- full disk ---------------------------------------------------------------
    add("disk/save-model", ["{ctrain}", "train", "c.conf", "--set", "train.save_model=full/keep.h5"], 1,
        r"full/keep\.h5: cannot write: No space left on device", files=BASE, tmpfs="48k",
        prepare=[["sh", "-c", "echo old-model > full/keep.h5 && head -c 40000 /dev/zero > full/fill || true"]])
    add("disk/checkpoint", ["{ctrain}", "train", "c.conf", "--set", "model_checkpoint.filepath=full/ck-{epoch}.h5"], 1,
        r"full/ck-1\.h5: cannot write: No space left on device", files=BASE, tmpfs="48k",
        prepare=[["sh", "-c", "head -c 45000 /dev/zero > full/fill || true"]], absent=["full/ck-1.h5"])
    add("disk/predict", ["{ctrain}", "predict", "m.h5", "--input", "d.csv", "--output", "full/p.csv"], 1,
        r"full/p\.csv: cannot write.*: No space left on device", files=with_model(), tmpfs="16k",
        prepare=[TRAIN, ["sh", "-c", "head -c 16384 /dev/zero > full/fill || true"]], absent=["full/p.csv"])
    add("disk/dump", ["{ctrain}", "dump-weights", "m.h5", "--output", "full/w.txt"], 1,
        r"full/w\.txt: cannot write: No space left on device", files=with_model(), tmpfs="16k",
        prepare=[TRAIN, ["sh", "-c", "head -c 16384 /dev/zero > full/fill || true"]], absent=["full/w.txt"])
    add("disk/csv-logger", ["{ctrain}", "train", "c.conf", "--set", "csv_logger.filename=full/log.csv"], 1,
        r"full/log\.csv: cannot write: No space left on device", files=BASE, tmpfs="16k",
        prepare=[["sh", "-c", "echo old-log > full/log.csv; head -c 16384 /dev/zero > full/fill || true"]])

    # --- signals -------------------------------------------------------------------
    # (issue #15) SIGINT and SIGTERM during training finish the step, write
    # the checkpoint and exit 3; no .tmp is left and save_model stays as it was.
    big = conf(model={"input": "64"}, hidden={"units": "512"}, data={"train": "big.csv"},
               train={"epochs": "1000", "batch_size": "4"})
    bigcsv = rows(n=64, f=64)
    for sig in (signal.SIGINT, signal.SIGTERM):
        add("signal/%s-during-checkpoint" % sig.name, ["{ctrain}", "train", "c.conf", "--set",
                                                       "model_checkpoint.filepath=ck.h5", "--set",
                                                       "model_checkpoint.save_freq=1"],
            3, files={"c.conf": big, "big.csv": bigcsv}, signal=("ck.h5*", sig))
    add("signal/SIGINT-keeps-save-model", ["{ctrain}", "train", "c.conf", "--set", "train.save_model=keep.h5",
                                           "--set", "model_checkpoint.filepath=ck.h5"], 3,
        files={"c.conf": big, "big.csv": bigcsv, "keep.h5": "the model of an earlier run\n"},
        signal=("ck.h5*", signal.SIGINT))

    # --- shapes ----------------------------------------------------------------------
    add("shape/npy-4x16-for-8x8", ["{ctrain}", "train", "c.conf"], 2,
        r"x\.npy \(training data\): samples have shape 4x16, the model input expects 8x8",
        files={"c.conf": IMG_CONF, "x.npy": npy("<f4", (N, 4, 16), X8), "y.npy": npy("<i8", (N,), Y)})
    add("shape/idx-14x56-for-28x28", ["{ctrain}", "train", "c.conf"], 2,
        r"x\.idx \(training data\): samples have shape 14x56, the model input expects 28x28",
        files={"c.conf": conf(model={"input": "28, 28"}, hidden={"type": "flatten", "units": None, "activation": None},
                              data={"format": "idx", "train": "x.idx", "train_labels": "y.idx"}),
               "x.idx": idx((4, 14, 56), [(k * 5) % 256 for k in range(4 * 784)]),
               "y.idx": idx((4,), [0, 1, 0, 1])})
    add("shape/npy-wrong-count", ["{ctrain}", "train", "c.conf"], 2,
        r"x\.npy \(training data\): samples have 63 values \(7x9\), the model input expects 64 \(8x8\)",
        files={"c.conf": IMG_CONF, "x.npy": npy("<f4", (N, 7, 9), X8[:N * 63]), "y.npy": npy("<i8", (N,), Y)})
    add("shape/test-set-other-shape", ["{ctrain}", "train", "c.conf"], 2,
        r"t\.npy \(test data\): samples have shape 2x32, the model input expects 8x8",
        files={"c.conf": conf(model={"input": "8, 8"}, hidden={"type": "flatten", "units": None, "activation": None},
                              data={"format": "npy", "train": "x.npy", "train_labels": "y.npy", "test": "t.npy",
                                    "test_labels": "y.npy"}),
               "x.npy": npy("<f4", (N, 8, 8), X8), "t.npy": npy("<f4", (N, 2, 32), X8), "y.npy": npy("<i8", (N,), Y)},
        absent=[])
    add("shape/predict-idx-14x56", ["{ctrain}", "predict", "m.h5", "--input", "p.idx"], 2,
        r"p\.idx: samples have shape 14x56, the model input expects 28x28",
        files={"c.conf": conf(model={"input": "28, 28"}, hidden={"type": "flatten", "units": None, "activation": None},
                              data={"format": "idx", "train": "x.idx", "train_labels": "y.idx"}),
               "x.idx": idx((4, 28, 28), [(k * 5) % 256 for k in range(4 * 784)]), "y.idx": idx((4,), [0, 1, 0, 1]),
               "p.idx": idx((4, 14, 56), [(k * 5) % 256 for k in range(4 * 784)])}, prepare=[TRAIN])
    add("labels/evaluate-model-test-label", ["{ctrain}", "evaluate", "m.h5", "--set", "data.test=t.csv"], 2,
        r"t\.csv: sample 2: label 5 is out of range",
        files=with_model(**{"t.csv": rows(bad={2: "0.1,0.2,0.3,0.4,5"})}), prepare=[TRAIN])
    add("shape/csv-too-few-columns", ["{ctrain}", "train", "c.conf"], 2,
        r"d\.csv \(training data\): samples have 3 values \(3\), the model input expects 4",
        files={"c.conf": CONF, "d.csv": rows(f=3)})
    add("shape/predict-other-size", ["{ctrain}", "predict", "m.h5", "--input", "p.csv"], 2,
        r"p\.csv: samples have 5 values, the model expects 4", files=with_model(**{"p.csv": rows(f=6, label=False)}),
        prepare=[TRAIN])
    add("shape/input-overflow", ["{ctrain}", "summary", "c.conf"], 2, r"c\.conf:2: \[model\] input: the shape holds more than 2147483648 values per sample",
        files={"c.conf": conf(model={"input": "4611686018427387905, 4"})})
    add("shape/input-square-overflow", ["{ctrain}", "summary", "c.conf"], 2,
        r"c\.conf:2: \[model\] input: the shape holds more than 2147483648 values per sample",
        files={"c.conf": conf(model={"input": "3037000500, 3037000500"})})
    add("shape/dense-units-huge", ["{ctrain}", "summary", "c.conf"], 2, r"c\.conf:4: dense 'hidden': the weight kernel has more than 2147483648 values",
        files={"c.conf": conf(model={"input": "2000000000"}, hidden={"units": "2000000000"})})
    add("shape/reshape-minus-one", ["{ctrain}", "summary", "c.conf"], 0, stdout=r"hidden \(Reshape\)\s+\(None, 2, 2\)",
        files={"c.conf": conf(hidden={"type": "reshape", "units": None, "activation": None, "target_shape": "2, -1"})})
    add("shape/reshape-minus-one-no-fit", ["{ctrain}", "summary", "c.conf"], 2, r"reshape 'hidden'.*4.*3",
        files={"c.conf": conf(hidden={"type": "reshape", "units": None, "activation": None, "target_shape": "3, -1"})})

    # --- labels: every split, before training, naming file and sample ---------------
    add("labels/csv-label-too-big", ["{ctrain}", "train", "c.conf"], 2,
        r"d\.csv: sample 5: label 12 is out of range; .* 2 units of 'out' expects class indices 0 to 1",
        files={"c.conf": CONF, "d.csv": rows(bad={5: "0.1,0.2,0.3,0.4,12"})})
    add("labels/csv-label-negative", ["{ctrain}", "train", "c.conf"], 2, r"d\.csv: sample 3: label -1 is negative",
        files={"c.conf": CONF, "d.csv": rows(bad={3: "0.1,0.2,0.3,0.4,-1"})})
    add("labels/csv-label-fraction", ["{ctrain}", "train", "c.conf"], 2,
        r"d\.csv: sample 4: label 0\.5 is not an integer", files={"c.conf": CONF, "d.csv": rows(bad={4: "0.1,0.2,0.3,0.4,0.5"})})
    add("labels/only-in-validation-split", ["{ctrain}", "train", "c.conf", "--set", "data.validation_split=0.25",
                                            "--set", "train.save_model=m.h5"], 2,
        r"d\.csv: sample 22: label 7 is out of range", files={"c.conf": CONF, "d.csv": rows(bad={22: "0.1,0.2,0.3,0.4,7"})},
        absent=["m.h5"])
    add("labels/only-in-test-file", ["{ctrain}", "train", "c.conf", "--set", "data.test=t.csv", "--set",
                                     "train.save_model=m.h5"], 2,
        r"t\.csv: sample 9: label 2 is out of range", files={"c.conf": CONF, "d.csv": CSV,
                                                             "t.csv": rows(bad={9: "0.1,0.2,0.3,0.4,2"})},
        absent=["m.h5"])
    add("labels/only-in-validation-file", ["{ctrain}", "train", "c.conf", "--set", "data.validation=v.csv"], 2,
        r"v\.csv: sample 0: label 3 is out of range", files={"c.conf": CONF, "d.csv": CSV,
                                                             "v.csv": rows(bad={0: "0.1,0.2,0.3,0.4,3"})})
    add("labels/only-in-test-split", ["{ctrain}", "train", "c.conf", "--set", "data.test_split=0.5"], 2,
        r"d\.csv: (the test_split part: )?sample \d+: label 9 is out of range",
        files={"c.conf": CONF, "d.csv": rows(bad={k: "0.1,0.2,0.3,0.4,9" for k in range(0, N, 2)})})
    add("labels/npy-label-too-big", ["{ctrain}", "train", "c.conf"], 2, r"y\.npy: sample 6: label 12 is out of range",
        files={"c.conf": IMG_CONF, "x.npy": npy("<f4", (N, 8, 8), X8),
               "y.npy": npy("<i8", (N,), [12 if i == 6 else v for i, v in enumerate(Y)])})
    add("labels/npy-label-negative", ["{ctrain}", "train", "c.conf"], 2, r"y\.npy: offset \d+: label -1 of sample 2 is negative",
        files={"c.conf": IMG_CONF, "x.npy": npy("<f4", (N, 8, 8), X8),
               "y.npy": npy("<i8", (N,), [-1 if i == 2 else v for i, v in enumerate(Y)])})
    add("labels/idx-label-too-big", ["{ctrain}", "train", "c.conf"], 2, r"y\.idx: sample 3: label 200 is out of range",
        files={"c.conf": conf(model={"input": "8, 8"}, hidden={"type": "flatten", "units": None, "activation": None},
                              data={"format": "idx", "train": "x.idx", "train_labels": "y.idx"}),
               "x.idx": idx((4, 8, 8), [k % 256 for k in range(256)]), "y.idx": idx((4,), [0, 1, 0, 200])})
    add("labels/cifar-label-for-2-units", ["{ctrain}", "train", "c.conf"], 2,
        r"c\.bin: sample 2: label 2 is out of range",
        files={"c.conf": conf(model={"input": "32, 32, 3"}, hidden={"type": "flatten", "units": None, "activation": None},
                              data={"format": "cifar10", "train": "c.bin"}), "c.bin": cifar(4)})
    add("labels/hdf5-label-too-big", ["{ctrain}", "train", "c.conf"], 2, r"d\.h5: sample 1: label 5 is out of range",
        files={"c.conf": conf(model={"input": "8, 8"}, hidden={"type": "flatten", "units": None, "activation": None},
                              data={"format": "hdf5", "train": "d.h5"}),
               "d.h5": h5({"x": ("f4", (4, 8, 8), X8[:256]), "y": ("i8", (4,), [0, 5, 1, 0])})})
    add("labels/image-folder-three-classes", ["{ctrain}", "train", "c.conf"], 2,
        r"img: sample \d+: label 2 is out of range",
        files={"c.conf": conf(model={"input": "8, 8, 1"}, hidden={"type": "flatten", "units": None, "activation": None},
                              data={"format": "image_folder", "train": "img", "color_mode": "grayscale"}),
               "img/a/0.png": png_gray(8, 8, 10), "img/b/0.png": png_gray(8, 8, 100), "img/c/0.png": png_gray(8, 8, 200)})

    # --- NaN and infinity in data ---------------------------------------------------------
    add("nan/npy-train", ["{ctrain}", "train", "c.conf"], 2, r"x\.npy: sample 5: value 9 is NaN; expected finite numbers",
        files={"c.conf": IMG_CONF, "x.npy": npy("<f4", (N, 8, 8), [float("nan") if k == 5 * 64 + 9 else v
                                                                    for k, v in enumerate(X8)]),
               "y.npy": npy("<i8", (N,), Y)})
    add("nan/npy-train-workers", ["{ctrain}", "train", "c.conf", "--set", "data.workers=2"], 2,
        r"x\.npy: sample 5: value 9 is NaN", files={"c.conf": IMG_CONF, "x.npy": npy("<f4", (N, 8, 8), [
            float("nan") if k == 5 * 64 + 9 else v for k, v in enumerate(X8)]), "y.npy": npy("<i8", (N,), Y)})
    add("nan/npy-inf-train", ["{ctrain}", "train", "c.conf"], 2, r"x\.npy: sample 0: value 0 is infinite",
        files={"c.conf": IMG_CONF, "x.npy": npy("<f4", (N, 8, 8), [float("inf")] + X8[1:]), "y.npy": npy("<i8", (N,), Y)})
    add("nan/npy-test", ["{ctrain}", "train", "c.conf", "--set", "data.test=t.npy", "--set", "data.test_labels=y.npy"],
        2, r"t\.npy: sample 1: value 3 is NaN", files={"c.conf": IMG_CONF, "x.npy": npy("<f4", (N, 8, 8), X8),
                                                       "t.npy": npy("<f4", (N, 8, 8), [float("nan") if k == 67 else v
                                                                                       for k, v in enumerate(X8)]),
                                                       "y.npy": npy("<i8", (N,), Y)})
    add("nan/npy-validation-split", ["{ctrain}", "train", "c.conf", "--set", "data.validation_split=0.5"], 2,
        r"x\.npy: sample 20: value 0 is NaN", files={"c.conf": IMG_CONF, "y.npy": npy("<i8", (N,), Y),
                                                     "x.npy": npy("<f4", (N, 8, 8), [float("nan") if k == 20 * 64 else v
                                                                                     for k, v in enumerate(X8)])})
    add("nan/npy-regression-target", ["{ctrain}", "train", "c.conf"], 2, r"y\.npy: sample 14: target 0 is NaN; expected finite numbers",
        files={"c.conf": conf(model={"input": "8, 8"}, hidden={"type": "flatten", "units": None, "activation": None},
                              out={"units": "1", "activation": None},
                              data={"format": "npy", "train": "x.npy", "train_labels": "y.npy", "validation_split": "0.5"},
                              train={"loss": "mse", "metrics": None}),
               "x.npy": npy("<f4", (N, 8, 8), X8),
               "y.npy": npy("<f4", (N,), [float("nan") if i == 14 else 1.0 for i in range(N)])})
    add("nan/npy-regression-target-train", ["{ctrain}", "train", "c.conf"], 2, r"y\.npy: sample 3: target 0 is infinite",
        files={"c.conf": conf(model={"input": "8, 8"}, hidden={"type": "flatten", "units": None, "activation": None},
                              out={"units": "1", "activation": None},
                              data={"format": "npy", "train": "x.npy", "train_labels": "y.npy"},
                              train={"loss": "mse", "metrics": None}),
               "x.npy": npy("<f4", (N, 8, 8), X8),
               "y.npy": npy("<f4", (N,), [float("inf") if i == 3 else 1.0 for i in range(N)])})
    add("nan/csv-text-nan", ["{ctrain}", "train", "c.conf"], 2, r"d\.csv:5: column 2 \('f1'\): \"nan\" is not a finite float32 value",
        files={"c.conf": CONF, "d.csv": rows(bad={3: "0.1,nan,0.3,0.4,1"})})
    add("nan/hdf5-train", ["{ctrain}", "train", "c.conf"], 2, r"d\.h5: sample 2: value 7 is NaN",
        files={"c.conf": conf(model={"input": "8, 8"}, hidden={"type": "flatten", "units": None, "activation": None},
                              data={"format": "hdf5", "train": "d.h5"}),
               "d.h5": h5({"x": ("f4", (4, 8, 8), [float("nan") if k == 2 * 64 + 7 else v for k, v in
                                                   enumerate(X8[:256])]), "y": ("i8", (4,), [0, 1, 1, 0])})})

    # --- class weights -------------------------------------------------------------------
    add("class_weight/too-many", ["{ctrain}", "train", "c.conf", "--set", "train.class_weight=1,2,3"], 2,
        r"c\.conf: \[train\] class_weight has 3 weights, the model has 2 classes", files=BASE)
    add("class_weight/too-few", ["{ctrain}", "train", "c.conf", "--set", "train.class_weight=1"], 2,
        r"class_weight has 1 weights, the model has 2 classes", files=BASE)
    add("class_weight/negative", ["{ctrain}", "train", "c.conf", "--set", "train.class_weight=1,-2"], 2,
        r"class_weight: weight 2 of class 1 is -2; expected a finite number >= 0", files=BASE)
    add("class_weight/sigmoid-two", ["{ctrain}", "train", "c.conf"], 0,
        files={"c.conf": conf(out={"units": "1", "activation": "sigmoid"},
                              train={"loss": "binary_crossentropy", "class_weight": "1, 3"}), "d.csv": CSV})

    # --- Keras's warnings ------------------------------------------------------------------
    add("warn/from-logits-softmax", ["{ctrain}", "train", "c.conf", "--set", "train.from_logits=true"], 0,
        r"warning: \[train\] from_logits = true, but the output layer 'out' ends in a softmax", files=BASE)
    add("warn/monitor-misspelt", ["{ctrain}", "train", "c.conf", "--set", "early_stopping.monitor=los"], 0,
        r"warning: \[early_stopping\] monitor = los is never logged \(logged: loss, accuracy\); did you mean loss\?",
        files=BASE)
    add("warn/monitor-val-without-validation", ["{ctrain}", "train", "c.conf", "--set",
                                                "model_checkpoint.filepath=ck.h5", "--set",
                                                "model_checkpoint.save_best_only=true"], 0,
        r"warning: \[model_checkpoint\] monitor = val_loss, but the run has no validation data", files=BASE)
    add("warn/plateau-monitor", ["{ctrain}", "train", "c.conf", "--set", "reduce_lr_on_plateau.monitor=val_acc",
                                 "--set", "data.validation_split=0.25"], 0,
        r"warning: \[reduce_lr_on_plateau\] monitor = val_acc is never logged \(logged: loss, accuracy, val_loss, "
        r"val_accuracy, lr\)", files=BASE)

    # --- terminate_on_nan -------------------------------------------------------------------
    huge = npy("<f4", (N, 8, 8), [3e38] * 64 * 2 + X8[128:])
    add("nan/terminate-keeps-model", ["{ctrain}", "train", "c.conf", "--set", "terminate_on_nan.enabled=true",
                                      "--set", "train.save_model=keep.h5"], 1,
        r"keep\.h5 was not written: training stopped: the weight \w+/\w+ holds NaN",
        files={"c.conf": IMG_CONF, "x.npy": huge, "y.npy": npy("<i8", (N,), Y), "keep.h5": "an earlier good model\n"})
    add("nan/checkpoint-keeps-model", ["{ctrain}", "train", "c.conf", "--set", "model_checkpoint.filepath=keep.h5",
                                       "--set", "model_checkpoint.save_freq=1"], 1,
        r"not saved: keep\.h5: the weight \w+/\w+ holds NaN|loss is not finite",
        files={"c.conf": IMG_CONF, "x.npy": huge, "y.npy": npy("<i8", (N,), Y), "keep.h5": "an earlier good model\n"})

    # --- evaluate CONF uses the trained model ---------------------------------------------------
    add("evaluate/conf-untrained", ["{ctrain}", "evaluate", "c.conf"], 2,
        r"c\.conf: no trained model to evaluate: \[train\] save_model .*is not set",
        files={"c.conf": conf(data={"test": "d.csv"}), "d.csv": CSV})
    add("evaluate/conf-save-model-missing", ["{ctrain}", "evaluate", "c.conf"], 2,
        r"c\.conf: no trained model to evaluate: \[train\] save_model = gone\.h5 does not exist",
        files={"c.conf": conf(data={"test": "d.csv"}, train={"save_model": "gone.h5"}), "d.csv": CSV})
    add("evaluate/conf-uses-save-model", ["{ctrain}", "evaluate", "c.conf"], 0,
        stdout=r"^Evaluating the model in .*m\.h5|^Test: loss",
        files={"c.conf": conf(data={"test": "d.csv"}, train={"save_model": "m.h5"}), "d.csv": CSV},
        prepare=[["{ctrain}", "c.conf"]])

    # --- config files (the existing tests/configs/bad set covers the parser) -----------------
    add("config/nul-byte", ["{ctrain}", "summary", "c.conf"], 2, r"c\.conf:\d+", files={"c.conf": CONF.replace("units = 3", "units = 3\0")})
    add("config/binary-garbage", ["{ctrain}", "summary", "c.conf"], 2, r"c\.conf:1",
        files={"c.conf": bytes(range(1, 200))})
    add("config/data-missing-file", ["{ctrain}", "train", "c.conf"], 2, r"cannot open nothere\.csv: No such file or directory",
        files={"c.conf": conf(data={"train": "nothere.csv"})})
    add("config/data-is-directory", ["{ctrain}", "train", "c.conf"], 2, r"sub: not a regular file \(expected a CSV file\)",
        files={"c.conf": conf(data={"train": "sub"}), "sub/x": "x"})
    add("config/units-zero", ["{ctrain}", "summary", "c.conf"], 2, r"c\.conf:\d+: .*units",
        files={"c.conf": conf(hidden={"units": "0"})})
    add("config/error-once-under-mpirun", ["mpirun", "--oversubscribe", "--allow-run-as-root", "-np", "2", "{ctrain}",
                                           "train", "c.conf", "--set", "train.epochs=x"], 2,
        r"\A(?:(?!ctrain: error).)*ctrain: error[^\n]*epochs(?:(?!ctrain: error).)*\Z", files=BASE, needs="mpirun",
        env={"OMPI_MCA_rmaps_base_oversubscribe": "1"})

    # --- data files of every format ---------------------------------------------------------
    add("data/csv-ragged", ["{ctrain}", "train", "c.conf"], 2, r"d\.csv:8: 3 fields, expected 5 as on line 1",
        files={"c.conf": CONF, "d.csv": rows(bad={6: "0.1,0.2,1"})})
    add("data/csv-text-cell", ["{ctrain}", "train", "c.conf"], 2, r"d\.csv:4: column 3 \('f2'\): \"abc\" is not a number",
        files={"c.conf": CONF, "d.csv": rows(bad={2: "0.1,0.2,abc,0.4,1"})})
    for fmt, msg in (("csv", r"/dev/zero: not a regular file"), ("npy", r"/dev/zero: not a regular file"),
                     ("idx", r"/dev/zero: offset 2: unknown IDX type code"), ("cifar10", r"/dev/zero: empty file")):
        add("data/%s-from-dev-zero" % fmt, ["{ctrain}", "train", "c.conf", "--set", "data.format=" + fmt, "--set",
                                           "data.train=/dev/zero", "--set", "data.train_labels=/dev/zero"], 2, msg,
            files=BASE)
    add("data/csv-empty", ["{ctrain}", "train", "c.conf"], 2, r"d\.csv", files={"c.conf": CONF, "d.csv": ""})
    add("data/npy-truncated", ["{ctrain}", "train", "c.conf"], 2, r"x\.npy: .*(truncated|offset|bytes)",
        files={"c.conf": IMG_CONF, "x.npy": npy("<f4", (N, 8, 8), X8)[:-100], "y.npy": npy("<i8", (N,), Y)})
    add("data/npy-bad-magic", ["{ctrain}", "train", "c.conf"], 2, r"x\.npy: offset 0",
        files={"c.conf": IMG_CONF, "x.npy": b"NOTNUMPY" + bytes(200), "y.npy": npy("<i8", (N,), Y)})
    add("data/npy-count-mismatch", ["{ctrain}", "train", "c.conf"], 2, r"y\.npy: offset \d+: count mismatch: 23 labels",
        files={"c.conf": IMG_CONF, "x.npy": npy("<f4", (N, 8, 8), X8), "y.npy": npy("<i8", (N - 1,), Y[:-1])})
    add("data/idx-truncated", ["{ctrain}", "train", "c.conf"], 2, r"x\.idx: .*(truncated|offset|bytes)",
        files={"c.conf": conf(model={"input": "8, 8"}, hidden={"type": "flatten", "units": None, "activation": None},
                              data={"format": "idx", "train": "x.idx", "train_labels": "y.idx"}),
               "x.idx": idx((4, 8, 8), [k % 256 for k in range(256)])[:-10], "y.idx": idx((4,), [0, 1, 0, 1])})
    add("data/idx-count-mismatch", ["{ctrain}", "train", "c.conf"], 2, r"y\.idx.*(3|count|labels)",
        files={"c.conf": conf(model={"input": "8, 8"}, hidden={"type": "flatten", "units": None, "activation": None},
                              data={"format": "idx", "train": "x.idx", "train_labels": "y.idx"}),
               "x.idx": idx((4, 8, 8), [k % 256 for k in range(256)]), "y.idx": idx((3,), [0, 1, 0])})
    add("data/cifar-partial-record", ["{ctrain}", "train", "c.conf"], 2, r"c\.bin: .*(3073|record|size|offset)",
        files={"c.conf": conf(model={"input": "32, 32, 3"}, hidden={"type": "flatten", "units": None, "activation": None},
                              out={"units": "10"}, data={"format": "cifar10", "train": "c.bin"}),
               "c.bin": cifar(4)[:-5]})
    add("data/image-corrupt-png", ["{ctrain}", "train", "c.conf"], 2, r"img/b/0\.png",
        files={"c.conf": conf(model={"input": "8, 8, 1"}, hidden={"type": "flatten", "units": None, "activation": None},
                              data={"format": "image_folder", "train": "img", "color_mode": "grayscale"}),
               "img/a/0.png": png_gray(8, 8, 10), "img/b/0.png": png_gray(8, 8, 100)[:40]})
    add("data/hdf5-missing-dataset", ["{ctrain}", "train", "c.conf"], 2, r"d\.h5: .*'images'",
        files={"c.conf": conf(model={"input": "8, 8"}, hidden={"type": "flatten", "units": None, "activation": None},
                              data={"format": "hdf5", "train": "d.h5", "x_dataset": "images"}),
               "d.h5": h5({"x": ("f4", (4, 8, 8), X8[:256]), "y": ("i8", (4,), [0, 1, 1, 0])})})
    add("data/hdf5-not-hdf5", ["{ctrain}", "train", "c.conf"], 2, r"d\.h5: .*(HDF5|offset 0)",
        files={"c.conf": conf(model={"input": "8, 8"}, hidden={"type": "flatten", "units": None, "activation": None},
                              data={"format": "hdf5", "train": "d.h5"}), "d.h5": "text\n"})
    add("data/predict-unlabelled-csv", ["{ctrain}", "predict", "m.h5", "--input", "p.csv", "--output", "out.csv"], 0,
        files=with_model(**{"p.csv": rows(label=False)}), prepare=[TRAIN], present=["out.csv"])
    add("data/predict-labelled-csv", ["{ctrain}", "predict", "m.h5", "--input", "d.csv", "--output", "out.csv"], 0,
        files=with_model(), prepare=[TRAIN], present=["out.csv"])

    # --- boosted trees: the same rules for their files -----------------------------------------
    tconf = ("[model]\nkind = boosted_trees\n[boosted_trees]\nloss = log_loss\nmax_iter = 5\n"
             "[data]\nformat = csv\ntrain = d.csv\n[train]\nverbose = 0\n")
    TTRAIN = ["{ctrain}", "t.conf", "--set", "train.save_model={w}/t.h5"]
    tfiles = {"t.conf": tconf, "d.csv": CSV}
    add("trees/predict-over-model", ["{ctrain}", "predict", "t.h5", "--input", "d.csv", "--output", "t.h5"], 2,
        r"--output = t\.h5: is also an input of this run", files=tfiles, prepare=[TTRAIN])
    add("trees/dump-over-model", ["{ctrain}", "dump-trees", "t.h5", "--output", "t.h5"], 2,
        r"--output = t\.h5: is also an input of this run", files=tfiles, prepare=[TTRAIN])
    add("trees/save-model-over-data", ["{ctrain}", "t.conf", "--set", "train.save_model=d.csv"], 2,
        r"\[train\] save_model = d\.csv: is also an input of this run", files=tfiles)
    add("trees/save-model-is-directory", ["{ctrain}", "t.conf", "--set", "train.save_model=sub"], 2,
        r"\[train\] save_model = sub: is a directory", files=dict(tfiles, **{"sub/x": "x"}))
    add("trees/save-model-full-disk", ["{ctrain}", "t.conf", "--set", "train.save_model=full/t.h5"], 1,
        r"full/t\.h5: cannot write: No space left on device", files=tfiles, tmpfs="16k",
        prepare=[["sh", "-c", "echo old > full/t.h5; head -c 16384 /dev/zero > full/fill || true"]])
    add("trees/predict-full-disk", ["{ctrain}", "predict", "t.h5", "--input", "d.csv", "--output", "full/p.csv"], 1,
        r"full/p\.csv: cannot write.*No space left on device", files=tfiles, tmpfs="16k",
        prepare=[TTRAIN, ["sh", "-c", "head -c 16384 /dev/zero > full/fill || true"]], absent=["full/p.csv"])
    add("trees/bit-flip", ["{ctrain}", "predict", "flip.h5", "--input", "d.csv"], 2,
        r"flip\.h5: 'trees/\w+' fails its Fletcher32 checksum", files=tfiles, prepare=[TTRAIN],
        post_files={"flip.stamp": h5_edit(flip_trees)})
    add("trees/missing-model", ["{ctrain}", "predict", "gone.h5", "--input", "d.csv"], 2, r"gone\.h5: cannot open: No such file",
        files=tfiles)

    # --- more of each class -------------------------------------------------------------------------
    add("config/data-error-once-under-mpirun", ["mpirun", "--oversubscribe", "--allow-run-as-root", "-np", "2",
                                                "{ctrain}", "train", "c.conf"], 2,
        r"\A(?:(?!ctrain: error).)*ctrain: error on rank 0: d\.csv: sample 5: label 7 is out of range"
        r"(?:(?!ctrain: error).)*\Z", files={"c.conf": CONF, "d.csv": rows(bad={5: "0.1,0.2,0.3,0.4,7"})},
        needs="mpirun")
    add("output/evaluate-predict-stdout-closed", ["sh", "-c", "{ctrain} predict m.h5 --input d.csv >&-"], 1,
        r"standard output: cannot write|cannot write predictions", files=with_model(), prepare=[TRAIN])
    add("output/checkpoint-template-dir-is-file", ["{ctrain}", "train", "c.conf", "--set",
                                                   "model_checkpoint.filepath=d.csv/ck-{epoch}.h5"], 2,
        r"\[model_checkpoint\] filepath: d\.csv/ck-1\.h5: cannot create d\.csv: d\.csv is not a directory", files=BASE)
    add("output/csv-logger-is-directory", ["{ctrain}", "train", "c.conf", "--set", "csv_logger.filename=sub"], 2,
        r"\[csv_logger\] filename = sub: is a directory", files=dict(BASE, **{"sub/x": "x"}))
    add("output/csv-logger-append-keeps-rows", ["{ctrain}", "train", "c.conf", "--set", "csv_logger.filename=log.csv",
                                                "--set", "csv_logger.append=true"], 0, files=BASE,
        prepare=[["{ctrain}", "c.conf", "--set", "csv_logger.filename=log.csv"],
                 ["sh", "-c", "test $(wc -l < log.csv) -eq 2"]], changes=["log.csv"])
    C[-1]["check_after"] = ["sh", "-c", "test $(wc -l < log.csv) -eq 3"]
    # SIGTERM while the log is being rewritten: the write completes (the
    # epoch's row is in it, whole), then the run stops with exit 3 (issue #15).
    add("signal/SIGTERM-csv-logger", ["{ctrain}", "train", "c.conf", "--set", "csv_logger.filename=log.csv"],
        3, files={"c.conf": big, "big.csv": bigcsv, "log.csv": "an older log\n"},
        signal=("log.csv*.tmp", signal.SIGTERM), changes=["log.csv"])
    # the log is the old one or a complete new one, never a torn one
    C[-1]["check_after"] = ["sh", "-c", "head -1 log.csv | grep -q -e '^an older log$' -e '^epoch,'"]
    add("model/resume-truncated", ["{ctrain}", "train", "c.conf", "--resume", "cut.h5"], 2, r"cut\.h5: .*(truncated|damaged)",
        files=with_model(), prepare=[TRAIN, ["sh", "-c", "head -c 2000 m.h5 > cut.h5"]])
    add("model/evaluate-weights-only-as-model", ["{ctrain}", "evaluate", "w.h5"], 2, r"w\.h5: no ctrain/config",
        files=with_model(), prepare=[["{ctrain}", "c.conf", "--set", "model_checkpoint.filepath=w.h5",
                                      "--set", "model_checkpoint.save_weights_only=true"]])
    add("model/directory-as-model", ["{ctrain}", "evaluate", "sub.h5"], 2, r"sub\.h5: .*(directory|cannot open|HDF5)",
        files={"sub.h5/x": "x"})
    add("data/npy-fortran-order", ["{ctrain}", "train", "c.conf"], 2, r"x\.npy: .*fortran",
        files={"c.conf": IMG_CONF, "y.npy": npy("<i8", (N,), Y),
               "x.npy": npy("<f4", (N, 8, 8), X8).replace(b"'fortran_order': False", b"'fortran_order': True ")})
    add("data/npy-labels-2d-sparse", ["{ctrain}", "train", "c.conf"], 2, r"x\.npy \(training data\): targets have 2 values per sample, sparse_categorical_crossentropy with 2 outputs expects 1",
        files={"c.conf": IMG_CONF, "x.npy": npy("<f4", (N, 8, 8), X8), "y.npy": npy("<i8", (N, 2), Y + Y)})
    add("data/idx-bad-magic", ["{ctrain}", "train", "c.conf"], 2, r"x\.idx: .*offset 0|x\.idx: .*magic",
        files={"c.conf": conf(model={"input": "8, 8"}, hidden={"type": "flatten", "units": None, "activation": None},
                              data={"format": "idx", "train": "x.idx", "train_labels": "y.idx"}),
               "x.idx": b"\x01\x02\x03\x04" + bytes(300), "y.idx": idx((4,), [0, 1, 0, 1])})
    add("data/csv-label-column-unknown", ["{ctrain}", "train", "c.conf", "--set", "data.label_column=target"], 2,
        r"d\.csv:1: label column 'target' is not in the header", files=BASE)
    add("shape/conv-on-flat-input", ["{ctrain}", "summary", "c.conf"], 2, r"c\.conf:\d+: .*conv2d 'hidden'",
        files={"c.conf": conf(hidden={"type": "conv2d", "units": None, "filters": "2", "kernel_size": "3"})})
    add("shape/kernel-larger-than-input", ["{ctrain}", "summary", "c.conf"], 2, r"c\.conf:\d+: .*conv2d 'hidden'",
        files={"c.conf": conf(model={"input": "4, 4, 1"},
                              hidden={"type": "conv2d", "units": None, "filters": "2", "kernel_size": "7"})})
    add("cli/help-every-command", ["sh", "-c", "for c in train evaluate predict summary bench dump-weights export-json "
                                   "dump-trees version help; do {ctrain} help $c >/dev/null || exit 1; "
                                   "{ctrain} $c --help | grep -q \"^usage: ctrain $c\" || exit 1; done"], 0)
    add("cli/resume-equals-missing", ["{ctrain}", "train", "c.conf", "--resume=missing.h5"], 2,
        r"missing\.h5: cannot open: No such file", files=BASE)
    add("cli/set-unset-then-set", ["{ctrain}", "summary", "c.conf", "--set", "hidden.units=", "--set", "hidden.units=6"],
        0, stdout=r"hidden \(Dense\)\s+\(None, 6\)", files=BASE)

    return [c for c in C if c.get("enabled", True)]
