#!/usr/bin/env bash
# Training throughput of the Fashion-MNIST MLP (784-128-10, batch 32, Adam)
# in ctrain and in PyTorch (Debian's python3-torch, tuned malloc as
# ../shared/bench/README.md describes), measured side by side in one run,
# at 1 and 2 threads; prints images/s for both and the ratio.
#
#   tests/bench/mlp_vs_torch.sh [BUILD_DIR] [ROUNDS]
# Needs: apt-get install python3-torch python3-numpy; ../shared/bench/.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$src/build}
rounds=${2:-3}
bench=${CT_SHARED_BENCH:-$src/../shared/bench}
export GLIBC_TUNABLES=glibc.malloc.mmap_threshold=16777216:glibc.malloc.trim_threshold=1073741824

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

printf '%-8s %14s %14s %8s\n' threads ctrain_img/s torch_img/s ratio
for t in 1 2; do
  c=() p=()
  for r in $(seq "$rounds"); do
    c+=("$("$build/ctrain" bench "$src/examples/fashion_mnist.conf" --threads "$t" --steps 3000 |
            sed -n 's/^bench: \([0-9.]*\) images.*/\1/p')")
    p+=("$(/usr/bin/python3 "$bench/train_bench.py" --model e --threads "$t" --reps 3 --target-s 2 |
            python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["images_per_s_median"])')")
  done
  cm=$(printf '%s\n' "${c[@]}" | median) pm=$(printf '%s\n' "${p[@]}" | median)
  printf '%-8s %14.0f %14.0f %7.2fx\n' "$t" "$cm" "$pm" "$(awk -v a="$cm" -v b="$pm" 'BEGIN { print a / b }')"
done
