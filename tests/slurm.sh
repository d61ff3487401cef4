#!/usr/bin/env bash
# A single-node Slurm cluster of its own (munge, slurmctld, slurmd from
# Debian's slurm-wlm and munge, a generated slurm.conf with
# MpiDefault=pmix, everything in a temporary directory) runs
# examples/slurm/cifar.sbatch on 2 ranks (srun --mpi=pmix), with a short
# time limit: Slurm's time-limit signal (USR1 to the batch script) makes
# the script forward it to the step, ctrain checkpoints and exits 3, the
# script requeues the job; in the second run `scancel --signal=TERM`
# (preemption) does the same; the third run finishes. Its final model must
# be bitwise the one an uninterrupted run gives. Prints the time from each
# signal to the step's exit. Stops everything it started.
#
#   slurm.sh CTRAIN SOURCE_DIR
# Needs root (the daemons run as root) and Debian's slurm-wlm and munge
# (launcher/setup.sh --test installs them); prints SKIPPED otherwise.
set -u
ctrain=$1 src=$2
fails=0 passes=0
pass() { passes=$((passes + 1)); }
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
for t in munged slurmctld slurmd sbatch scontrol squeue scancel; do
  command -v $t >/dev/null || PATH=$PATH:/usr/sbin
  command -v $t >/dev/null || { echo "SKIPPED: $t not installed (apt-get install slurm-wlm munge)"; exit 0; }
done
[ "$(id -u)" -eq 0 ] || { echo "SKIPPED: needs root to run munged and slurmd"; exit 0; }

T=$(mktemp -d /tmp/ct_slurm.XXXXXX)
chmod 755 "$T"
daemons=()
# every process below the given ones (slurmd's slurmstepd and their tasks)
descendants() {
  local p
  for p in "$@"; do
    for c in $(ps -o pid= --ppid "$p" 2>/dev/null); do echo "$c"; descendants "$c"; done
  done
}
cleanup() {
  [ -n "${SLURM_CONF:-}" ] && scancel --full --signal=KILL "${job:-0}" 2>/dev/null
  local all
  all=$(descendants "${daemons[@]}")
  for p in "${daemons[@]}"; do kill "$p" 2>/dev/null; done
  sleep 1
  for p in "${daemons[@]}" $all; do kill -9 "$p" 2>/dev/null; done
  [ -n "${KEEP:-}" ] && echo "kept $T" || rm -rf "$T"
}
trap cleanup EXIT

free_port() { /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
host=$(hostname -s)
mkdir -p "$T/munge" "$T/state" "$T/spool" "$T/run"
chmod 700 "$T/munge"
head -c 1024 /dev/urandom >"$T/munge/munge.key"
chmod 400 "$T/munge/munge.key"
munged --force --key-file="$T/munge/munge.key" --socket="$T/munge/munge.sock" --pid-file="$T/munge/munged.pid" \
  --log-file="$T/munge/munged.log" --seed-file="$T/munge/munged.seed" 2>"$T/munge/start.err" ||
  { fail "munged did not start: $(cat "$T/munge/start.err")"; exit 1; }
daemons+=("$(cat "$T/munge/munged.pid")")
cores=$(nproc)
cat >"$T/slurm.conf" <<EOF
ClusterName=ctest
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$T/munge/munge.sock,cred_expire=10
CredType=cred/munge
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/run/slurmctld.pid
SlurmdPidFile=$T/run/slurmd.pid
SlurmctldLogFile=$T/slurmctld.log
SlurmdLogFile=$T/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
MpiDefault=pmix
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
JobRequeue=1
KillWait=30
MinJobAge=300
NodeName=$host CPUs=$cores State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
export SLURM_CONF=$T/slurm.conf
slurmctld -D -i -f "$T/slurm.conf" >"$T/slurmctld.out" 2>&1 &
daemons+=($!)
slurmd -D -f "$T/slurm.conf" -N "$host" >"$T/slurmd.out" 2>&1 &
daemons+=($!)
for _ in $(seq 100); do
  sinfo -h -o %T 2>/dev/null | grep -qE '^idle' && break
  sleep 0.2
done
sinfo -h -o %T 2>/dev/null | grep -qE '^idle' && pass ||
  { fail "the node did not come up: $(sinfo 2>&1; tail -5 "$T/slurmctld.log" "$T/slurmd.log")"; exit 1; }

# The run: synthetic CIFAR-10 (make_cifar), 2 ranks of 1 thread.
mkdir -p "$T/conf/data"
"$(dirname "$ctrain")/tests/make_cifar" "$T/conf/data/cifar-10-batches-bin" 500 200 2 >/dev/null || fail "make_cifar"
cp "$src/examples/cifar.conf" "$T/conf/"
args="--verbose 2 --set train.epochs=10 --set train.batch_size=100 --set data.workers=1 --set model_checkpoint.save_freq=5"
mkdir -p "$T/straight" "$T/job"
(cd "$T/straight" && mpirun --allow-run-as-root --oversubscribe -np 2 "$ctrain" train "$T/conf/cifar.conf" --threads 1 \
  --set "model_checkpoint.filepath=$T/straight/ck-{epoch}-{batch}.h5" --set "train.save_model=$T/straight/cifar.h5" \
  --set lr_schedule.warmup_epochs=2 --set train.batch_size=512 --set distributed.lr_scaling=linear \
  --set distributed.base_batch_size=64 --set model_checkpoint.save_best_only=false \
  --set "csv_logger.filename=$T/straight/cifar.csv" --set "tensorboard.log_dir=$T/straight/tb" $args >"$T/straight/out.txt" 2>&1) ||
  fail "uninterrupted run: $(tail -5 "$T/straight/out.txt")"

# A short time limit (3 minutes); the preemptions come before it, as
# Slurm delivers them: USR1 to the batch script (what --signal=B:USR1@120
# sends at the time limit) and TERM to the job step (a preemption).
cd "$T/job"
job=$(sbatch --parsable --nodes=1 --ntasks-per-node=2 --cpus-per-task=1 --time=3 \
  --export="ALL,CTRAIN=$ctrain,CTRAIN_DIR=$src,CONF=$T/conf/cifar.conf,CTRAIN_ARGS=$args" \
  "$src/examples/slurm/cifar.sbatch" 2>&1) || { fail "sbatch: $job"; exit 1; }
log="$T/job/ctrain-cifar-$job.out"
epochs() { local n; n=$(grep -c "^Epoch" "$log" 2>/dev/null); echo "${n:-0}"; }
state() { scontrol show job "$job" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p'; }
restarts() { scontrol show job "$job" 2>/dev/null | sed -n 's/.*Restarts=\([0-9]*\).*/\1/p'; }
# wait_until CMD: up to 5 minutes (only a hang takes that long)
wait_until() {
  for _ in $(seq 1500); do
    eval "$1" && return 0
    sleep 0.2
  done
  return 1
}
wait_until '[ "$(state)" = RUNNING ] && [ "$(epochs)" -ge 2 ]' ||
  fail "the job did not run: $(state)"
scancel --batch --signal=USR1 "$job"
wait_until '[ "$(restarts)" = 1 ]' && pass || fail "no requeue after USR1: $(state); $(cat "$log")"
grep -q "got USR1" "$log" && pass || fail "the batch script did not get USR1: $(cat "$log")"
grep -q "step exited 3" "$log" && pass || fail "the step did not exit 3: $(cat "$log")"
# second run: preempted with TERM to the step once it trains
wait_until '[ "$(state)" = RUNNING ] && [ "$(epochs)" -ge 4 ]' ||
  fail "the requeued job did not run: $(state)"
scancel --signal=TERM "$job"
wait_until '[ "$(restarts)" = 2 ]' && pass || fail "no requeue after TERM: $(state); $(cat "$log")"
wait_until '[ "$(state)" = COMPLETED ]' && pass || fail "the job did not complete: $(state); $(tail -20 "$log")"
grep "signal after step" "$log" | sed 's/^ctrain: /slurm: /'
[ "$(grep -c 'stopped by a signal after step' "$log")" -eq 2 ] && pass || fail "expected 2 interruptions: $(cat "$log")"
[ "$(grep -c '^Resuming from' "$log")" -eq 2 ] && pass || fail "expected 2 resumes: $(cat "$log")"
"$ctrain" dump-weights "$T/straight/cifar.h5" >"$T/a.txt" && "$ctrain" dump-weights "$T/job/cifar.h5" >"$T/b.txt" &&
  cmp -s "$T/a.txt" "$T/b.txt" && pass || fail "the preempted and requeued job's model differs from the uninterrupted run's"
echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
