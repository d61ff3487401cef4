#!/usr/bin/env bash
# Training throughput and peak memory of the seed's CNNs in ctrain and in
# PyTorch 1.13 (Debian's python3-torch, tuned malloc, channels_last, as
# ../shared/bench/README.md describes), side by side in one run, at 1 and
# 2 threads. Prints images/s, the ratio, and each one's maximum RSS.
#
#   tests/bench/cnn_vs_torch.sh [BUILD_DIR] [ROUNDS] [MODELS]
# MODELS: a subset of "a b c d nin fm" (default all): a-d are
# ../shared/bench's models, nin and fm (cnn_nin.conf, fashion_mnist_cnn.conf)
# are defined in tests/bench/torch_extra.py. Needs python3-torch.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$src/build}
rounds=${2:-3}
models=${3:-a b c d nin fm}
bench=${CT_SHARED_BENCH:-$src/../shared/bench}
export GLIBC_TUNABLES=glibc.malloc.mmap_threshold=16777216:glibc.malloc.trim_threshold=1073741824
declare -A conf=([a]=cnn_basic [b]=cnn_alexnet [c]=cnn_bn [d]=resnet20 [nin]=cnn_nin [fm]=fashion_mnist_cnn)
declare -A steps=([a]=300 [b]=60 [c]=60 [d]=10 [nin]=100 [fm]=300)

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
rss() { sed -n 's/.*Maximum resident set size (kbytes): \([0-9]*\).*/\1/p' "$1"; }

printf '%-6s %-8s %12s %12s %7s %7s %10s %10s\n' model threads ctrain_img/s torch_img/s ratio paired ctrain_MB torch_MB
for m in $models; do
  for t in 1 2; do
    c=() p=() cr=() pr=()
    for r in $(seq "$rounds"); do
      out=$(/usr/bin/time -v "$build/ctrain" bench "$src/examples/${conf[$m]}.conf" --threads "$t" --steps "${steps[$m]}" 2>/tmp/ct_time.$$)
      c+=("$(sed -n 's/^bench: \([0-9.]*\) images.*/\1/p' <<<"$out")"); cr+=("$(rss /tmp/ct_time.$$)")
      case $m in
        nin|fm) ref=("$src/tests/bench/torch_extra.py" --model "$m") ;;
        *) ref=("$bench/train_bench.py" --model "$m" --channels-last) ;;
      esac
      out=$(/usr/bin/time -v /usr/bin/python3 "${ref[@]}" --threads "$t" --reps 3 --target-s 2 2>/tmp/ct_time.$$)
      p+=("$(python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["images_per_s_median"])' <<<"$out")"); pr+=("$(rss /tmp/ct_time.$$)")
    done
    cm=$(printf '%s\n' "${c[@]}" | median) pm=$(printf '%s\n' "${p[@]}" | median)
    crm=$(printf '%s\n' "${cr[@]}" | median) prm=$(printf '%s\n' "${pr[@]}" | median)
    # paired: the median of each round's ratio (ctrain and PyTorch run back
    # to back), which cancels the slow spells this VM has at 2 threads
    pair=$(for i in "${!c[@]}"; do awk -v a="${c[$i]}" -v b="${p[$i]}" 'BEGIN { print a / b }'; done | median)
    printf '%-6s %-8s %12.0f %12.0f %6.2fx %6.2fx %10.0f %10.0f\n' "$m" "$t" "$cm" "$pm" "$(awk -v a="$cm" -v b="$pm" 'BEGIN { print a / b }')" "$pair" \
      "$(awk -v k="$crm" 'BEGIN { print k / 1024 }')" "$(awk -v k="$prm" 'BEGIN { print k / 1024 }')"
  done
done
rm -f /tmp/ct_time.$$
