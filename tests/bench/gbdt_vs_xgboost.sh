#!/usr/bin/env bash
# Boosted trees side by side: ctrain, XGBoost 1.7 `hist` and scikit-learn
# 1.2's HistGradientBoostingClassifier on the same synthetic data
# (../shared/bench/gbdt_bench.py: make_classification, 800,000 x 50 rows
# for training, 200,000 for testing, 100 trees, no early stopping), at 1
# and 2 threads, and ctrain with 2 ranks x 1 thread. Fit seconds exclude
# reading the data for every library (ctrain prints its fit time). ctrain
# runs twice: with its defaults (sklearn's: leaf-wise, 31 leaves) and with
# XGBoost's tree shape (depth-wise, max_depth 6, l2 1, min_samples_leaf 1).
# Prints one row per run, then the ratios.
#
#   tests/bench/gbdt_vs_xgboost.sh [BUILD_DIR] [DATA_DIR]
# Needs: apt-get install python3-sklearn python3-xgboost; ../shared/bench/;
# mpirun for the 2-rank row. Takes a few minutes on 2 cores.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$src/build}
data=${2:-/tmp/ct_gbdt_bench}
bench=${CT_SHARED_BENCH:-$src/../shared/bench}
[ -f "$bench/gbdt_bench.py" ] || bench=/work/shared/bench
[ -f "$bench/gbdt_bench.py" ] || { echo "no gbdt_bench.py under \$CT_SHARED_BENCH or ../shared/bench" >&2; exit 2; }
py=/usr/bin/python3
mpi=(mpirun --oversubscribe)
[ "$(id -u)" -eq 0 ] && mpi+=(--allow-run-as-root)

[ -f "$data/x_train.npy" ] || "$py" "$bench/gbdt_bench.py" --write "$data" --threads 1 --libs sklearn >/dev/null
conf=$data/bench_trees.conf
cat >"$conf" <<CONF
[model]
kind = boosted_trees
[boosted_trees]
loss = log_loss
max_iter = 100
early_stopping = false
[data]
format = npy
train = x_train.npy
train_labels = y_train.npy
test = x_test.npy
test_labels = y_test.npy
CONF
xgb_shape=(--set boosted_trees.grow_policy=depthwise --set boosted_trees.max_depth=6 --set boosted_trees.max_leaf_nodes=0
           --set boosted_trees.l2_regularization=1 --set boosted_trees.min_samples_leaf=1)

declare -A fit acc
row() { printf '%-34s %8s %9s\n' "$1" "$2" "$3"; }
row run fit_s accuracy
ctrain_run() { # NAME CMD...
  local name=$1 out; shift
  out=$("$@" --verbose 1 2>&1) || { echo "$name failed: $out" >&2; exit 1; }
  fit[$name]=$(sed -n 's/^Fit [0-9]* trees in \([0-9.]*\) s.*/\1/p' <<<"$out")
  acc[$name]=$(sed -n 's/^Test: .*accuracy: \([0-9.]*\).*/\1/p' <<<"$out")
  row "$name" "${fit[$name]}" "${acc[$name]}"
}
for t in 1 2; do
  while read -r line; do
    lib=$("$py" -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["lib"])' "$line")
    fit[$lib$t]=$("$py" -c 'import json,sys; print(json.loads(sys.argv[1])["fit_s"])' "$line")
    acc[$lib$t]=$("$py" -c 'import json,sys; print(json.loads(sys.argv[1])["test_accuracy"])' "$line")
    row "$lib $t thread(s)" "${fit[$lib$t]}" "${acc[$lib$t]}"
  done < <("$py" "$bench/gbdt_bench.py" --threads "$t" --libs xgboost sklearn | grep '^{')
  ctrain_run "ctrain$t" "$build/ctrain" train "$conf" --threads "$t"
  ctrain_run "ctrain_xgbshape$t" "$build/ctrain" train "$conf" --threads "$t" "${xgb_shape[@]}"
done
ctrain_run ctrain_2ranks "${mpi[@]}" -np 2 -x OMP_NUM_THREADS=1 "$build/ctrain" train "$conf" --threads 1

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }
diff() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.4f", a - b }'; }
echo
for t in 1 2; do
  echo "$t thread(s): XGBoost/ctrain fit time $(ratio "${fit[xgboost$t]}" "${fit[ctrain$t]}") (accuracy $(diff "${acc[ctrain$t]}" "${acc[xgboost$t]}")),"\
       "with XGBoost's tree shape $(ratio "${fit[xgboost$t]}" "${fit[ctrain_xgbshape$t]}") ($(diff "${acc[ctrain_xgbshape$t]}" "${acc[xgboost$t]}"));"\
       "sklearn/ctrain $(ratio "${fit[sklearn$t]}" "${fit[ctrain$t]}") ($(diff "${acc[ctrain$t]}" "${acc[sklearn$t]}"))"
done
echo "2 ranks x 1 thread: $(ratio "${fit[ctrain1]}" "${fit[ctrain_2ranks]}") as fast as 1 rank x 1 thread"
