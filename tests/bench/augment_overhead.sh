#!/usr/bin/env bash
# Does the input pipeline hide behind compute? Training throughput of
# examples/cifar.conf (the seed's basic CNN, batch 64) with augmentation
# (rotation, shifts, flip, zoom on the pipeline's worker threads) against
# the same pipeline without augmentation, and against a fixed synthetic
# batch (no pipeline at all), interleaved, median of ROUNDS runs each, at
# 1 and 2 compute threads. Then the augmentation throughput per worker
# thread (bench_augment).
#
#   tests/bench/augment_overhead.sh [BUILD_DIR] [ROUNDS] [STEPS]
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$src/build}
rounds=${2:-5}
steps=${3:-200}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/data/cifar-10-batches-bin"
"$build/tests/make_cifar" "$work/data/cifar-10-batches-bin" 2000 500 2 >/dev/null
cp "$src/examples/cifar.conf" "$work/"
off=(--set augment.rotation_range=0 --set augment.zoom_range=0 --set augment.width_shift_range=0
     --set augment.height_shift_range=0 --set augment.horizontal_flip=false)

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
rate() { sed -n 's/^bench: \([0-9.]*\) images.*/\1/p'; }

printf '%-8s %14s %14s %14s %12s %8s\n' threads synthetic pipeline pipeline+aug aug_slowdown paired
for t in 1 2; do
  s=() p=() a=()
  for r in $(seq "$rounds"); do
    s+=("$("$build/ctrain" bench "$work/cifar.conf" --threads "$t" --steps "$steps" | rate)")
    p+=("$("$build/ctrain" bench "$work/cifar.conf" --threads "$t" --steps "$steps" --data "${off[@]}" | rate)")
    a+=("$("$build/ctrain" bench "$work/cifar.conf" --threads "$t" --steps "$steps" --data | rate)")
  done
  ms=$(printf '%s\n' "${s[@]}" | median) mp=$(printf '%s\n' "${p[@]}" | median) ma=$(printf '%s\n' "${a[@]}" | median)
  pair=$(for i in "${!p[@]}"; do echo "(${p[$i]} / ${a[$i]} - 1) * 100" | bc -l; done | median)
  printf '%-8s %14.1f %14.1f %14.1f %11.1f%% %7.1f%%\n' "$t" "$ms" "$mp" "$ma" "$(echo "($mp / $ma - 1) * 100" | bc -l)" "$pair"
done
echo "(images/s; aug_slowdown = step time with augmentation over without, minus 1, from the medians;"
echo " paired = the median of each round's slowdown, the runs back to back)"
"$build/tests/bench_augment"
