#!/usr/bin/env bash
# Two hosts made of network namespaces (each with its own host name, UTS
# namespace), joined through a bridge in a third one, run a 2-rank job
# with mpirun over TCP (Open MPI's tcp BTL; the second host's daemon is
# started by an rsh agent that enters its namespace). Then a fault:
#   cut:  the link is cut (both ports leave the bridge: packets vanish,
#         as with a pulled cable; no error reaches either side);
#   kill: the rank on the second host is killed (SIGKILL).
# The job must end by itself within 60 s of the fault, non-zero, a message
# naming the silent rank and its host (for the cut), and no process of
# the job may be left on either host, mpirun included. Prints the time
# from the fault to the end of the job. With ALLREDUCE=mpi the same runs
# over MPI_Allreduce.
#
#   netns.sh CTRAIN SOURCE_DIR cut|kill [ring|mpi]
# Needs root and `ip netns`; prints SKIPPED otherwise.
set -u
ctrain=$1 src=$2 fault=$3 algo=${4:-ring}
fails=0 passes=0
pass() { passes=$((passes + 1)); }
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
[ "$(id -u)" -eq 0 ] || { echo "SKIPPED: needs root for network namespaces"; exit 0; }
command -v ip >/dev/null && command -v unshare >/dev/null || { echo "SKIPPED: needs ip and unshare"; exit 0; }

T=$(mktemp -d /tmp/ct_netns.XXXXXX)
id=$$
A=ctA$id B=ctB$id S=ctS$id
# addresses inside the namespaces only
net=10.$((100 + id % 100)).$((id / 100 % 250)).
ipA=${net}1 ipB=${net}2
cleanup() {
  for ns in $A $B; do
    for p in $(ip netns pids $ns 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
  done
  for ns in $A $B $S; do ip netns del $ns 2>/dev/null; done
  rm -rf "$T"
}
trap cleanup EXIT
ip netns add $A && ip netns add $B && ip netns add $S || { echo "SKIPPED: cannot create network namespaces"; exit 0; }
ip -n $S link add br0 type bridge && ip -n $S link set br0 up || { echo "SKIPPED: no bridge support"; exit 0; }
for h in A B; do
  ns=${!h}
  ip link add v$h$id type veth peer name s$h$id
  ip link set v$h$id netns $ns
  ip link set s$h$id netns $S
  ip -n $S link set s$h$id master br0
  ip -n $S link set s$h$id up
  ip -n $ns link set lo up
  ip -n $ns link set v$h$id name eth0
  ip -n $ns link set eth0 up
done
ip -n $A addr add $ipA/24 dev eth0
ip -n $B addr add $ipB/24 dev eth0

# The rsh agent: Open MPI calls it as `agent HOST COMMAND...` to start its
# daemon on HOST; here it enters the second host's namespaces.
cat >"$T/agent" <<EOF
#!/bin/sh
shift
exec ip netns exec $B unshare --uts sh -c "hostname hostB; \$*"
EOF
chmod +x "$T/agent"
# The keepalive settings are Open MPI's way to notice a lost daemon (see
# the README's "Faults" section): without them mpirun and the far daemon
# wait for each other for about 15 minutes after the ranks have ended.
mca=(--mca plm_rsh_agent "$T/agent" --mca btl tcp,self --mca btl_tcp_if_include ${net}0/24
     --mca oob_tcp_if_include ${net}0/24 --mca oob_tcp_keepalive_time 5 --mca oob_tcp_keepalive_intvl 2
     --mca oob_tcp_keepalive_probes 3)
job=(mpirun --allow-run-as-root --host "$ipA:1,$ipB:1" -np 2 "${mca[@]}" -x OMP_NUM_THREADS=1
     "$ctrain" "$src/examples/breast_cancer.conf" --verbose 2 --threads 1 --set train.epochs=100000
     --set train.batch_size=8 --set distributed.allreduce=$algo)
ip netns exec $A unshare --uts sh -c 'hostname hostA; exec "$@"' sh "${job[@]}" >"$T/out.txt" 2>"$T/err.txt" &
runner=$!
# training is under way once epochs are printed
for _ in $(seq 600); do
  [ "$(grep -c '^Epoch' "$T/out.txt" 2>/dev/null)" -ge 3 ] && break
  kill -0 $runner 2>/dev/null || break
  sleep 0.1
done
[ "$(grep -c '^Epoch' "$T/out.txt")" -ge 3 ] && pass || { fail "the job did not start: $(cat "$T/err.txt")"; exit 1; }
rankB=$(ip netns pids $B | while read -r p; do [ "$(cat /proc/$p/comm 2>/dev/null)" = ctrain ] && echo $p; done | head -1)
[ -n "$rankB" ] && pass || fail "no rank on hostB"
t0=$(date +%s.%N)
case $fault in
  cut) ip -n $S link set sA$id nomaster; ip -n $S link set sB$id nomaster ;;
  kill) kill -9 "$rankB" ;;
esac
ended=0
for _ in $(seq 900); do # 90 s: the test's own bound; the goal is 60
  kill -0 $runner 2>/dev/null || { ended=1; break; }
  sleep 0.1
done
t1=$(date +%s.%N)
took=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
if [ $ended -eq 1 ]; then
  wait $runner 2>/dev/null
  rc=$?
else
  rc=none
  echo "still running on hostA: $(ip netns pids $A | while read -r p; do cat /proc/$p/comm; done | tr '\n' ' ')"
  echo "still running on hostB: $(ip netns pids $B | while read -r p; do cat /proc/$p/comm; done | tr '\n' ' ')"
fi
echo "netns $fault ($algo): fault to the end of mpirun: $took s, exit $rc"
[ $ended -eq 1 ] && awk -v t="$took" 'BEGIN { exit !(t <= 60) }' && pass || fail "the job did not end within 60 s of the fault ($took s)"
[ $ended -eq 1 ] && [ "$rc" -ne 0 ] && pass || fail "exit code $rc"
if [ "$fault" = cut ]; then
  # ctrain's heartbeat (20 s) or Open MPI's keepalive (11 s), whichever comes first
  grep -Eq "no heartbeat from rank [01] \(host host[AB]\)|Remote daemon: .* on node $ipB" "$T/err.txt" && pass ||
    fail "no message naming the silent rank and host: $(cat "$T/err.txt")"
fi
sleep 1
[ $ended -eq 1 ] || sleep 30 # what is left half a minute later
left=$(for ns in $A $B; do ip netns pids $ns; done | while read -r p; do cat /proc/$p/comm 2>/dev/null; done | tr '\n' ' ')
[ -z "$left" ] && pass || fail "processes left after the job: $left"
grep -v '^$' "$T/err.txt" | grep -v -- '^---' | head -8
echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
