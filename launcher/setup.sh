#!/usr/bin/env bash
# Set up ctrain on Debian 12: install what is missing, build, then either
# train the default example (Fashion-MNIST from Debian's package) or, with
# --test, run the whole test suite.
#
#   launcher/setup.sh            install, build, train examples/fashion_mnist.conf
#   launcher/setup.sh --test     install, build (warnings as errors), run ctest,
#                                then the unit tests again under ASan+UBSan and
#                                the pipeline's threads under TSan
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
mode=${1:-train}
jobs=$(nproc 2>/dev/null || echo 2)

packages=(build-essential cmake pkg-config libopenmpi-dev openmpi-bin libopenblas-openmp-dev
          libhdf5-dev libprotobuf-c-dev protobuf-c-compiler zlib1g-dev libpng-dev libjpeg62-turbo-dev
          dataset-fashion-mnist)

# The test suite also checks our files with independent readers.
case "$mode" in --test|test) packages+=(protobuf-compiler python3-h5py python3-sklearn) ;; esac
# ...and our TensorFlow.js files with TF.js itself (Node.js and npm from
# Debian, unless a node is already installed; Chromium for the web page).
case "$mode" in --test|test)
  command -v node > /dev/null || packages+=(nodejs)
  command -v npm > /dev/null || packages+=(npm)
  packages+=(chromium) ;;
esac
# tests/slurm.sh starts a single-node Slurm cluster of its own.
case "$mode" in --test|test) packages+=(slurm-wlm munge) ;; esac

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

case "$mode" in
  --test|test)
    # @tensorflow/tfjs (pure-JS CPU backend) and playwright-core, pinned by
    # tests/tfjs/package-lock.json; no install scripts, no browser download.
    (cd tests/tfjs && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
    cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DCT_WERROR=ON
    cmake --build build -j "$jobs"
    # Long runs (label slow) and the TF.js checks (label tfjs, minutes of
    # TF.js's pure-JavaScript backend) are outside the default set:
    # (cd build && ctest -L 'slow|tfjs') runs them.
    (cd build && ctest --output-on-failure -j 1 --timeout 900 -LE 'slow|tfjs')
    cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCT_SANITIZE=ON -DCT_WERROR=ON
    cmake --build build-asan -j "$jobs"
    (cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
       ctest --output-on-failure -j 1 -L unit --timeout 900)
    # The pipeline's worker and prefetch threads, and concurrent source
    # reads, under ThreadSanitizer.
    cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DCT_TSAN=ON -DCT_WERROR=ON
    cmake --build build-tsan -j "$jobs" --target test_pipeline test_sources
    TSAN_OPTIONS=halt_on_error=1 build-tsan/tests/test_pipeline
    TSAN_OPTIONS=halt_on_error=1 build-tsan/tests/test_sources
    ;;
  train|--train)
    cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
    cmake --build build -j "$jobs"
    build/ctrain examples/fashion_mnist.conf --verbose 2
    ;;
  *)
    echo "usage: launcher/setup.sh [--test]" >&2
    exit 2
    ;;
esac
