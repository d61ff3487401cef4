#!/usr/bin/env bash
# Cluster behaviour of ctrain through its command line: signals, resumes
# on other rank counts, callbacks across a resume, multi-rank options in
# real training. Usage:
#   cluster.sh CTRAIN SOURCE_DIR CASE
# Each case prints "N passed, M failed" and exits non-zero on a failure.
# No case asserts on time: a bound is only there to catch a hang.
set -u
ctrain=$1 src=$2 case=$3
work=$(mktemp -d /tmp/ct_cluster.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
fails=0 passes=0
pass() { passes=$((passes + 1)); }
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
mpi=(mpirun --oversubscribe)
[ "$(id -u)" -eq 0 ] && mpi+=(--allow-run-as-root)
bc="$src/examples/breast_cancer.conf"
# same_weights A.h5 B.h5: every variable bitwise equal (dump-weights prints %.9g)
same_weights() {
  "$ctrain" dump-weights "$1" >"$work/wa.txt" && "$ctrain" dump-weights "$2" >"$work/wb.txt" && cmp -s "$work/wa.txt" "$work/wb.txt"
}
# csv_col FILE ROW(0-based epoch) NAME -> the value
csv_col() {
  awk -F, -v e="$2" -v n="$3" 'NR == 1 { for (i = 1; i <= NF; i++) { gsub(/\r/, "", $i); if ($i == n) c = i } }
    NR > 1 && $1 == e { gsub(/\r/, "", $c); print $c }' "$1"
}
# close A B REL: |A - B| <= REL * |A|
close() { awk -v a="$1" -v b="$2" -v r="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; s = a < 0 ? -a : a; exit !(a != "" && b != "" && d <= r * s) }'; }
# wait_for GLOB: until a file matching it exists (or 60 s: a hang)
wait_for() {
  for _ in $(seq 1200); do
    compgen -G "$1" >/dev/null && return 0
    sleep 0.05
  done
  return 1
}

case $case in
signal | mpi_signal)
  # A signal in the middle of training: the step in progress finishes,
  # rank 0 writes a checkpoint, the run exits 3; --resume then ends with
  # the weights of an uninterrupted run. A second signal is harmless.
  if [ "$case" = signal ]; then run=("$ctrain") sigs="USR1 USR1"; else run=("${mpi[@]}" -np 2 "$ctrain") sigs="USR1 USR1"; fi
  o=("$bc" --verbose 0 --threads 1 --set train.epochs=60 --set train.batch_size=4
     --set "model_checkpoint.filepath=$work/ck-{epoch}-{batch}.h5" --set model_checkpoint.save_freq=400
     --set model_checkpoint.keep=2)
  "${run[@]}" "${o[@]}" --set "train.save_model=$work/straight.h5" >/dev/null 2>&1 || fail "uninterrupted run"
  for sig in USR1 TERM INT; do
    [ "$case" = mpi_signal ] && [ "$sig" != USR1 ] && continue # mpirun forwards USR1; TERM and INT end its job
    rm -f "$work"/ck-*.h5
    "${run[@]}" "${o[@]}" >"$work/out.txt" 2>"$work/err.txt" &
    pid=$!
    pids+=("$pid")
    wait_for "$work/ck-*.h5" || fail "$sig: no first checkpoint"
    t0=$(date +%s.%N)
    kill -"$sig" "$pid"
    sleep 0.01
    kill -"$sig" "$pid" 2>/dev/null # Slurm may deliver the signal twice
    wait "$pid"
    rc=$?
    t1=$(date +%s.%N)
    echo "$case $sig: signal to exit $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s"
    [ "$rc" -eq 3 ] && pass || fail "$sig: exit $rc, expected 3: $(cat "$work/err.txt")"
    grep -q "stopped by a signal after step [0-9]* (epoch [0-9]*, batch [0-9]*); checkpoint $work/ck-" "$work/err.txt" &&
      pass || fail "$sig: no 'stopped by a signal ... checkpoint' line: $(cat "$work/err.txt")"
    [ "$(ls "$work"/ck-*.h5 | wc -l)" -le 2 ] && pass || fail "$sig: keep = 2 not honoured: $(ls "$work")"
    "${run[@]}" "${o[@]}" --resume --set "train.save_model=$work/resumed.h5" >/dev/null 2>&1 || fail "$sig: resume"
    same_weights "$work/straight.h5" "$work/resumed.h5" && pass || fail "$sig: interrupted + resumed differs from uninterrupted"
    [ "$(ls "$work"/ck-*.h5 | wc -l)" -le 2 ] && pass || fail "$sig: keep = 2 not honoured across the resume: $(ls "$work")"
  done
  ;;
mpi_ranks)
  # A checkpoint of 2 ranks resumes on 4, and that one on 1 (the same
  # global batch): epoch and batch carry over (the CSV log has each epoch
  # once), the optimizer and the epoch's running totals too (each epoch's
  # loss as in an uninterrupted 2-rank run, rel. 1e-6).
  o=("$bc" --verbose 0 --threads 1 --set train.batch_size=8 --set "model_checkpoint.filepath=$work/r-{epoch}-{batch}.h5"
     --set model_checkpoint.save_freq=30 --set "csv_logger.filename=$work/log.csv")
  "${mpi[@]}" -np 2 "$ctrain" "${o[@]}" --set train.epochs=6 >/dev/null 2>&1 || fail "uninterrupted 2 ranks"
  mv "$work/log.csv" "$work/straight.csv"
  rm -f "$work"/r-*.h5
  "${mpi[@]}" -np 2 "$ctrain" "${o[@]}" --set train.epochs=2 >/dev/null 2>&1 || fail "2 ranks, epochs 1-2"
  out=$("${mpi[@]}" -np 4 "$ctrain" "${o[@]}" --set train.epochs=4 --resume --verbose 1 2>&1) || fail "4 ranks: $out"
  grep -q "Resuming from $work/r-2-40.h5 (epoch 2, batch 40)" <<<"$out" && pass || fail "4 ranks did not resume mid-epoch: $out"
  out=$("$ctrain" "${o[@]}" --set train.epochs=6 --resume --verbose 1 2>&1) || fail "1 rank: $out"
  grep -q "Resuming from $work/r-4-30.h5 (epoch 4, batch 30)" <<<"$out" && pass || fail "1 rank did not resume mid-epoch: $out"
  [ "$(awk -F, 'NR > 1 { print $1 }' "$work/log.csv" | tr -d '\r' | tr '\n' ' ')" = "0 1 2 3 4 5 " ] &&
    pass || fail "CSV epochs after two resumes: $(cat "$work/log.csv")"
  for e in 0 1 2 3 4 5; do
    a=$(csv_col "$work/straight.csv" $e loss) b=$(csv_col "$work/log.csv" $e loss)
    close "$a" "$b" 1e-6 && pass || fail "epoch $e loss $b after 2 -> 4 -> 1 vs $a uninterrupted"
  done
  ;;
mpi_uneven_resume)
  # 3 ranks, a checkpoint inside an epoch, a failure, --resume on 3: the
  # epoch's totals are the job's, not rank 0's (the resumed run finishes
  # and logs the uninterrupted loss), the weights are the same.
  o=("$bc" --verbose 0 --threads 1 --set train.epochs=3 --set train.batch_size=10
     --set "model_checkpoint.filepath=$work/u-{epoch}-{batch}.h5" --set model_checkpoint.save_freq=25
     --set "csv_logger.filename=$work/log.csv")
  "${mpi[@]}" -np 3 "$ctrain" "${o[@]}" --set "train.save_model=$work/straight.h5" >/dev/null 2>&1 || fail "uninterrupted"
  mv "$work/log.csv" "$work/straight.csv"
  rm -f "$work"/u-*.h5
  CT_TEST_FAIL_RANK=1 CT_TEST_FAIL_STEP=90 timeout 120 "${mpi[@]}" -x CT_TEST_FAIL_RANK -x CT_TEST_FAIL_STEP -np 3 \
    "$ctrain" "${o[@]}" >/dev/null 2>&1 && fail "the injected failure did not fail"
  [ -f "$work/u-2-35.h5" ] && pass || fail "no mid-epoch checkpoint u-2-35.h5 (step 75): $(ls "$work")"
  err=$("${mpi[@]}" -np 3 "$ctrain" "${o[@]}" --resume --set "train.save_model=$work/resumed.h5" 2>&1 >/dev/null) ||
    fail "resume on 3 ranks: $err"
  same_weights "$work/straight.h5" "$work/resumed.h5" && pass || fail "resumed weights differ"
  a=$(csv_col "$work/straight.csv" 1 loss) b=$(csv_col "$work/log.csv" 1 loss)
  close "$a" "$b" 1e-12 && pass || fail "the resumed epoch logs loss $b, uninterrupted $a"
  a=$(csv_col "$work/straight.csv" 1 accuracy) b=$(csv_col "$work/log.csv" 1 accuracy)
  [ -n "$a" ] && [ "$a" = "$b" ] && pass || fail "the resumed epoch logs accuracy $b, uninterrupted $a"
  ;;
mpi_early_stopping)
  # restore_best_weights on 2 ranks: the job ends normally, every rank
  # holds the restored weights (the launcher checks), and the saved model
  # is the best epoch's checkpoint.
  o=("$bc" --verbose 1 --threads 1 --set early_stopping.monitor=loss --set early_stopping.patience=1
     --set early_stopping.min_delta=0.05 --set early_stopping.restore_best_weights=true
     --set "model_checkpoint.filepath=$work/e-{epoch}.h5" --set model_checkpoint.save_weights_only=true)
  out=$("${mpi[@]}" -np 2 "$ctrain" "${o[@]}" --set "train.save_model=$work/m.h5" 2>&1) || fail "2 ranks exited $?: $out"
  best=$(sed -n 's/^Restoring model weights from the end of the best epoch: \([0-9]*\)\./\1/p' <<<"$out")
  [ -n "$best" ] && pass || fail "no restore message: $out"
  "$ctrain" dump-weights "$work/m.h5" | sed 1d >"$work/a.txt"
  "$ctrain" dump-weights "$work/e-$best.h5" | sed 1d >"$work/b.txt"
  cmp -s "$work/a.txt" "$work/b.txt" && pass || fail "the saved model is not epoch $best's weights"
  # Resumed after the best epoch, the run restores the same best weights.
  o2=("$bc" --verbose 0 --threads 1 --set early_stopping.monitor=loss --set early_stopping.patience=3
      --set early_stopping.min_delta=0.02 --set early_stopping.restore_best_weights=true
      --set "model_checkpoint.filepath=$work/f-{epoch}.h5")
  "$ctrain" "${o2[@]}" --set "train.save_model=$work/straight.h5" >/dev/null || fail "uninterrupted early stopping"
  last=$(ls "$work"/f-*.h5 | sed 's/.*f-\([0-9]*\).h5/\1/' | sort -n | tail -1)
  rm -f "$work/f-$((last - 1)).h5" "$work/f-$last.h5"
  "$ctrain" "${o2[@]}" --resume --set "train.save_model=$work/resumed.h5" >/dev/null || fail "resumed early stopping"
  same_weights "$work/straight.h5" "$work/resumed.h5" && pass || fail "resumed run restored other weights"
  ;;
mpi_heartbeat)
  # A rank that goes silent (SIGSTOP: as a hung node or a cut link looks
  # to the others) ends the job through the heartbeat, on the ring and
  # with allreduce = mpi (a blocking MPI_Allreduce the main thread cannot
  # leave), naming the rank and its host.
  for algo in ring mpi; do
    "${mpi[@]}" -np 2 "$ctrain" "$bc" --verbose 2 --threads 1 --set train.epochs=100000 --set train.batch_size=8 \
      --set distributed.heartbeat=3 --set distributed.allreduce=$algo >"$work/out.txt" 2>"$work/err.txt" &
    pid=$!
    pids+=("$pid")
    wait_for_epochs() { for _ in $(seq 1200); do [ "$(grep -c '^Epoch' "$work/out.txt")" -ge 3 ] && return 0; sleep 0.05; done; return 1; }
    wait_for_epochs || fail "$algo: training did not start"
    rank1=$(pgrep -P "$pid" -x ctrain | sort -n | tail -1)
    kill -STOP "$rank1"
    t0=$(date +%s.%N)
    for _ in $(seq 1200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -0 "$pid" 2>/dev/null && fail "$algo: the job is still running 60 s after rank 1 stopped"
    wait "$pid"
    rc=$?
    echo "$algo: rank 1 stopped, the job ended $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s later, exit $rc"
    [ "$rc" -ne 0 ] && pass || fail "$algo: exit $rc"
    grep -q "error on rank 0 (host $(hostname)): no heartbeat from rank 1 (host $(hostname)) for [0-9]* s" "$work/err.txt" &&
      pass || fail "$algo: no message naming rank 1: $(cat "$work/err.txt")"
    pgrep -P "$pid" >/dev/null && fail "$algo: processes left"
  done
  ;;
mpi_options)
  # fp16 gradients, allreduce = mpi and 1 KiB buckets in real training:
  # the loss of 2 ranks agrees with 1 rank's. BatchNormalization (batch
  # statistics per rank, moving statistics averaged over the ranks): with
  # a learning rate of 1e-30 (no weight moves) the moving mean, a linear recurrence of batch
  # means, must be one rank's (the mean of the halves' means is the
  # batch's); in training, every allreduce variant gives the same loss.
  cat >"$work/bn.conf" <<EOF
[model]
input = 30
[dense]
type = dense
units = 16
[bn]
type = batch_normalization
[relu]
type = activation
activation = relu
[out]
type = dense
units = 1
activation = sigmoid
[data]
format = csv
train = $src/examples/data/breast_cancer.csv
skip_rows = 1
header = false
standardize = true
test_split = 0.3
[train]
optimizer = sgd
loss = binary_crossentropy
metrics = accuracy
batch_size = 32
epochs = 2
seed = 7
EOF
  variant() { # ring|mpi|bucket|fp16 -> the --set options
    case $1 in
      mpi) echo --set distributed.allreduce=mpi ;;
      bucket) echo --set distributed.bucket_kb=1 ;;
      fp16) echo --set distributed.fp16=true ;;
    esac
  }
  o=("$bc" --verbose 0 --threads 1 --set train.epochs=3 --set "csv_logger.filename=$work/log.csv")
  "$ctrain" "${o[@]}" >/dev/null || fail "one rank"
  mv "$work/log.csv" "$work/one.csv"
  for v in ring fp16 mpi bucket; do
    rel=1e-5
    [ $v = fp16 ] && rel=1e-2
    # shellcheck disable=SC2046
    "${mpi[@]}" -np 2 "$ctrain" "${o[@]}" $(variant $v) >/dev/null 2>&1 || { fail "$v: 2 ranks exited $?"; continue; }
    a=$(csv_col "$work/one.csv" 2 loss) b=$(csv_col "$work/log.csv" 2 loss)
    echo "$v: loss 1 rank $a, 2 ranks $b"
    close "$a" "$b" $rel && pass || fail "$v: loss $b on 2 ranks vs $a on 1"
  done
  # a per-batch decision: the warm-up's learning rate, set on rank 0 after every step
  w=(--set lr_schedule.warmup_epochs=2 --set lr_schedule.warmup_start=0.1)
  "$ctrain" "${o[@]}" "${w[@]}" >/dev/null || fail "warm-up, one rank"
  mv "$work/log.csv" "$work/one_w.csv"
  "${mpi[@]}" -np 2 "$ctrain" "${o[@]}" "${w[@]}" >/dev/null 2>&1 || fail "warm-up, 2 ranks"
  a=$(csv_col "$work/one_w.csv" 2 loss) b=$(csv_col "$work/log.csv" 2 loss) c=$(csv_col "$work/one.csv" 2 loss)
  echo "warm-up: loss 1 rank $a, 2 ranks $b (without warm-up $c)"
  close "$a" "$b" 1e-5 && ! close "$a" "$c" 1e-3 && pass || fail "warm-up: loss $b on 2 ranks vs $a on 1 ($c without)"
  means() { "$ctrain" dump-weights "$1" | sed -n '/moving_mean/,/shape/p' | grep -v shape | tr ' ' '\n' | grep .; }
  frozen=("$work/bn.conf" --verbose 0 --threads 1 --set train.learning_rate=1e-30) # no weight moves
  "$ctrain" "${frozen[@]}" --set "train.save_model=$work/one.h5" >/dev/null || fail "BN one rank"
  "${mpi[@]}" -np 2 "$ctrain" "${frozen[@]}" --set "train.save_model=$work/two.h5" >/dev/null 2>&1 || fail "BN 2 ranks"
  paste <(means "$work/one.h5") <(means "$work/two.h5") >"$work/means.txt"
  awk 'NF == 2 { n++; d = $1 - $2; if (d < 0) d = -d; s = $1 < 0 ? -$1 : $1; if (d > 1e-5 * s + 1e-7) bad++ }
       END { exit !(n == 16 && !bad) }' "$work/means.txt" && pass || fail "BN moving means, 1 vs 2 ranks: $(head -3 "$work/means.txt")"
  for v in ring fp16 mpi bucket; do
    rel=1e-5
    [ $v = fp16 ] && rel=1e-2
    # shellcheck disable=SC2046
    "${mpi[@]}" -np 2 "$ctrain" "$work/bn.conf" --verbose 0 --threads 1 --set "csv_logger.filename=$work/bn.csv" \
      $(variant $v) >/dev/null 2>&1 || { fail "BN $v: 2 ranks exited $?"; continue; }
    [ $v = ring ] && cp "$work/bn.csv" "$work/bn_ring.csv"
    a=$(csv_col "$work/bn_ring.csv" 1 loss) b=$(csv_col "$work/bn.csv" 1 loss)
    echo "BN $v: loss $b (ring $a)"
    close "$a" "$b" $rel && pass || fail "BN $v: loss $b vs $a with the ring"
  done
  ;;
*)
  echo "unknown case $case" >&2
  exit 2
  ;;
esac
echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
