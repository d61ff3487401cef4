#!/usr/bin/python3
"""ctrain's boosted trees against scikit-learn 1.2's HistGradientBoosting
with defaults, on the same five seeded splits of each example's data
(70/30 for titanic and breast cancer, 80/20 for Boston). The splits are
written as CSV files and ctrain trains on them through the example
configs with --set data.train=... data.test=...; sklearn fits the same
rows (titanic's text columns ordinal-encoded and declared categorical,
missing ages as NaN). Passes when ctrain's mean accuracy is within 0.01
of sklearn's or better, and its mean Boston test MSE within 10%.

Usage: compare_sklearn.py CTRAIN EXAMPLES_DIR WORK_DIR"""
import csv, os, re, subprocess, sys
os.environ["OMP_NUM_THREADS"] = "1"  # a loaded machine: threads only add waiting
import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

ctrain, examples, work = sys.argv[1:4]
os.makedirs(work, exist_ok=True)

def read(path, skip=0):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[skip:]

def run_ctrain(conf, sets, train, test):
    cmd = [ctrain, "train", os.path.join(examples, conf), "--verbose", "0", "--threads", "1",
           "--set", "data.train=" + train, "--set", "data.test=" + test, "--set", "data.test_split=0",
           "--set", "data.skip_rows=0", "--set", "train.save_model=" + os.path.join(work, "m.h5")] + sum(
               (["--set", s] for s in sets), [])
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit("ctrain failed: %s\n%s" % (" ".join(cmd), out.stderr))
    m = re.search(r"Test: loss: \S+ - (accuracy|mse): (\S+)", out.stdout)
    return float(m.group(2))

def splits(n, frac):
    for seed in range(5):
        perm = np.random.RandomState(seed).permutation(n)
        k = int(round(n * frac))
        yield perm[k:], perm[:k]

def write(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        if header: w.writerow(header)
        w.writerows(rows)

ok = True
# titanic: survived, sex, age, passenger_class
rows = read(os.path.join(examples, "data/titanic.csv"))
header, rows = rows[0], rows[1:]
y = np.array([int(r[0]) for r in rows])
sex = {v: i for i, v in enumerate(sorted({r[1] for r in rows}))}
cls = {v: i for i, v in enumerate(sorted({r[3] for r in rows}))}
X = np.array([[sex[r[1]], float(r[2]) if r[2] else np.nan, cls[r[3]]] for r in rows])
res = []
for tr, te in splits(len(rows), 0.3):
    write(os.path.join(work, "tr.csv"), header, [rows[i] for i in tr])
    write(os.path.join(work, "te.csv"), header, [rows[i] for i in te])
    a = run_ctrain("titanic_trees.conf", [], os.path.join(work, "tr.csv"), os.path.join(work, "te.csv"))
    sk = HistGradientBoostingClassifier(categorical_features=[0, 2], random_state=0).fit(X[tr], y[tr]).score(X[te], y[te])
    res.append((a, sk))
def report(name, res, lower_better=False):
    a = np.mean([r[0] for r in res]); s = np.mean([r[1] for r in res])
    print("%s: ctrain %s, sklearn %s; mean ctrain %.4f sklearn %.4f" % (
        name, " ".join("%.4f" % r[0] for r in res), " ".join("%.4f" % r[1] for r in res), a, s))
    return a <= 1.10 * s if lower_better else a >= s - 0.01
ok &= report("titanic accuracy", res)

# breast cancer: 30 features, label last; first line "569,30,..."
rows = read(os.path.join(examples, "data/breast_cancer.csv"), 1)
X = np.array([[float(v) for v in r[:-1]] for r in rows]); y = np.array([int(r[-1]) for r in rows])
res = []
for tr, te in splits(len(rows), 0.3):
    write(os.path.join(work, "tr.csv"), None, [rows[i] for i in tr])
    write(os.path.join(work, "te.csv"), None, [rows[i] for i in te])
    a = run_ctrain("breast_cancer_trees.conf", [], os.path.join(work, "tr.csv"), os.path.join(work, "te.csv"))
    sk = HistGradientBoostingClassifier(random_state=0).fit(X[tr], y[tr]).score(X[te], y[te])
    res.append((a, sk))
ok &= report("breast_cancer accuracy", res)

# Boston: header on line 2, MEDV last
rows = read(os.path.join(examples, "data/boston_house_prices.csv"), 1)
header, rows = rows[0], rows[1:]
X = np.array([[float(v) for v in r[:-1]] for r in rows]); y = np.array([float(r[-1]) for r in rows])
res = []
for tr, te in splits(len(rows), 0.2):
    write(os.path.join(work, "tr.csv"), header, [rows[i] for i in tr])
    write(os.path.join(work, "te.csv"), header, [rows[i] for i in te])
    a = run_ctrain("boston_trees.conf", [], os.path.join(work, "tr.csv"), os.path.join(work, "te.csv"))
    p = HistGradientBoostingRegressor(random_state=0).fit(X[tr], y[tr]).predict(X[te])
    res.append((a, float(np.mean((p - y[te]) ** 2))))
ok &= report("boston test mse", res, lower_better=True)
print("compare_sklearn: PASS" if ok else "compare_sklearn: FAIL")
sys.exit(0 if ok else 1)
