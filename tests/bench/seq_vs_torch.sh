#!/usr/bin/env bash
# Training throughput and peak memory of the seed's sequence models in
# ctrain (tests/bench/seq/*.conf, `ctrain bench`) and in PyTorch 1.13
# (../shared/bench/seq_bench.py, the same models), side by side in one run,
# at 1 and 2 threads. Prints samples/s, the ratio of medians, the median of
# per-round ratios (the two run back to back), and each one's maximum RSS.
#
#   tests/bench/seq_vs_torch.sh [BUILD_DIR] [ROUNDS] [MODELS]
# MODELS: a subset of "textcnn lstm gru bilstm transformer" (default all).
# Needs python3-torch.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$src/build}
rounds=${2:-3}
models=${3:-textcnn lstm gru bilstm transformer}
bench=${CT_SHARED_BENCH:-$src/../shared/bench}
[ -d "$bench" ] || bench=/work/shared/bench
export GLIBC_TUNABLES=glibc.malloc.mmap_threshold=16777216:glibc.malloc.trim_threshold=1073741824
declare -A steps=([textcnn]=30 [lstm]=40 [gru]=40 [bilstm]=20 [transformer]=10)

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
rss() { sed -n 's/.*Maximum resident set size (kbytes): \([0-9]*\).*/\1/p' "$1"; }

printf '%-12s %-8s %14s %14s %7s %7s %10s %10s\n' model threads ctrain_smp/s torch_smp/s ratio paired ctrain_MB torch_MB
for m in $models; do
  for t in 1 2; do
    c=() p=() cr=() pr=()
    for r in $(seq "$rounds"); do
      out=$(/usr/bin/time -v "$build/ctrain" bench "$src/tests/bench/seq/$m.conf" --threads "$t" --steps "${steps[$m]}" 2>/tmp/ct_time.$$)
      c+=("$(sed -n 's/^bench: \([0-9.]*\) images.*/\1/p' <<<"$out")"); cr+=("$(rss /tmp/ct_time.$$)")
      out=$(/usr/bin/time -v /usr/bin/python3 "$bench/seq_bench.py" --model "$m" --threads "$t" --reps 3 --target-s 2 2>/tmp/ct_time.$$)
      p+=("$(python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["samples_per_s_median"])' <<<"$out")"); pr+=("$(rss /tmp/ct_time.$$)")
    done
    cm=$(printf '%s\n' "${c[@]}" | median) pm=$(printf '%s\n' "${p[@]}" | median)
    crm=$(printf '%s\n' "${cr[@]}" | median) prm=$(printf '%s\n' "${pr[@]}" | median)
    pair=$(for i in "${!c[@]}"; do awk -v a="${c[$i]}" -v b="${p[$i]}" 'BEGIN { print a / b }'; done | median)
    printf '%-12s %-8s %14.0f %14.0f %6.2fx %6.2fx %10.0f %10.0f\n' "$m" "$t" "$cm" "$pm" "$(awk -v a="$cm" -v b="$pm" 'BEGIN { print a / b }')" "$pair" \
      "$(awk -v k="$crm" 'BEGIN { print k / 1024 }')" "$(awk -v k="$prm" 'BEGIN { print k / 1024 }')"
  done
done
rm -f /tmp/ct_time.$$
