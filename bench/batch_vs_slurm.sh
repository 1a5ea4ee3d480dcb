#!/usr/bin/env bash
# Short-task throughput, side by side: the batch framework on Agora (agora-bench-batch:
# simulated agents, docs/PERF.md) and Slurm (Debian's slurm-wlm: one slurmctld and one slurmd
# per node, all on this machine), each running TASKS tasks of 10 ms on 20 nodes of 8 cpus.
#
#   bench/batch_vs_slurm.sh [TASKS] [SLURM_TASKS]     # defaults: 100000 and TASKS
#
# Slurm runs the job as one job array (sbatch --array, each task `sleep 0.01`), tuned as its
# high-throughput guide says (no batch scheduling delay, no minimum interval between scheduling
# passes, a deep queue). For both, tasks/s is the tasks over the time from submission to the
# last end, and the idle share is 1 - (tasks x 10 ms) / (slots x that time).
set -euo pipefail

TASKS=${1:-100000}
SLURM_TASKS=${2:-$TASKS}
NODES=20
CPUS=8
BUILD=${BUILD_DIR:-build}
here=$(cd "$(dirname "$0")/.." && pwd)

echo "== Agora: the batch framework, $NODES simulated agents of $CPUS cpus, $TASKS tasks of 10 ms"
"$here/$BUILD/bin/agora-bench-batch" --agents=$NODES --tasks="$TASKS" --task_ms=10 \
  --agent_resources="cpus:$CPUS;mem:16384;disk:65536"

for tool in slurmctld slurmd sbatch squeue; do
  if ! command -v $tool >/dev/null; then
    echo "== Slurm: not installed (apt-get install slurm-wlm)"; exit 0
  fi
done

dir=$(mktemp -d /tmp/agora-bench-slurm.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  rm -rf "$dir"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
host=$(hostname -s)
ctld_port=$(free_port)
first_node_port=$(free_port)
mkdir -p "$dir/state" "$dir/spool"
cat > "$dir/slurm.conf" <<EOF
ClusterName=agorabench
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
AuthType=auth/none
CredType=cred/none
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd-%n.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd-%n.log
SlurmctldDebug=error
SlurmdDebug=error
ProctrackType=proctrack/pgid
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0,default_queue_depth=10000,max_rpc_cnt=0
MaxJobCount=$((SLURM_TASKS * 2 + 1000))
MaxArraySize=$((SLURM_TASKS + 1))
MinJobAge=1
ReturnToService=2
SlurmdParameters=config_overrides
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SwitchType=switch/none
NodeName=sim[1-$NODES] NodeHostname=$host NodeAddr=127.0.0.1 Port=[$first_node_port-$((first_node_port + NODES - 1))] CPUs=$CPUS RealMemory=4096 State=UNKNOWN
PartitionName=bench Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$dir/slurm.conf"
slurmctld -D -f "$SLURM_CONF" > "$dir/slurmctld.out" 2>&1 &
pids+=($!)
for n in $(seq 1 $NODES); do
  mkdir -p "$dir/spool/sim$n"
  slurmd -D -N "sim$n" -f "$SLURM_CONF" > "$dir/slurmd-$n.out" 2>&1 &
  pids+=($!)
done
for _ in $(seq 300); do
  idle=$(sinfo -h -t idle -o '%D' 2>/dev/null | head -1)
  [ "${idle:-0}" = "$NODES" ] && break
  sleep 0.2
done
if [ "${idle:-0}" != "$NODES" ]; then
  echo "== Slurm: $idle of its $NODES nodes came up in 60 s:"
  sinfo 2>&1 || true
  tail -5 "$dir"/slurmctld.log "$dir"/slurmd-1.out 2>/dev/null || true
  exit 1
fi

echo "== Slurm $(sbatch --version | awk '{print $2}'): $NODES slurmd of $CPUS cpus, $SLURM_TASKS tasks of 10 ms (one sbatch --array)"
start=$(date +%s.%N)
sbatch --array=0-$((SLURM_TASKS - 1)) -o /dev/null -e /dev/null --wrap='sleep 0.01' > /dev/null
while [ -n "$(squeue -h -o '%i' | head -1)" ]; do sleep 0.5; done
end=$(date +%s.%N)
python3 - "$start" "$end" "$SLURM_TASKS" "$NODES" "$CPUS" <<'EOF'
import sys
start, end, tasks, nodes, cpus = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
span = end - start
slots = nodes * cpus
busy = tasks * 0.010
print("nodes=%d slots=%d tasks=%d task_ms=10: %.0f tasks/s (%.2f s; ideal %.2f s); idle while tasks waited %.1f%%"
      % (nodes, slots, tasks, tasks / span, span, busy / slots, 100 * (1 - busy / (slots * span))))
EOF
