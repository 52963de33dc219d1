#!/usr/bin/env bash
# The SLURM path, tested for real: bring up a one-node SLURM cluster (Debian's slurm-wlm + munge), run
# config/ci.yaml (on one of its tasks) locally and through workflow/profiles/slurm, check that the jobs went through SLURM and that
# both runs give the same metrics, check that a failing job fails the run with SLURM's status, stop the daemons
# by PID. Cluster notes: docs/cluster.md. Needs root and apt (Debian 12); CI calls it from .ci/run.
#   bash scripts/slurm_ci.sh            (after scripts/setup.sh)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
SNAKEMAKE="$REPO/.venv/bin/snakemake"
WORK=$(mktemp -d /tmp/aqbench-slurm.XXXXXX)
S=$WORK/slurm
CONF=/etc/slurm/slurm.conf
MARK="# written by aqbench scripts/slurm_ci.sh"
say() { echo "slurm-ci: $*"; }

[ "$(id -u)" = 0 ] || { echo "slurm-ci: needs root (it installs and starts slurm and munge)" >&2; exit 1; }
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  say "installing slurm-wlm and munge from Debian"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi
if [ -f "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
  echo "slurm-ci: $CONF exists and is not ours: refusing to replace a real cluster's configuration" >&2; exit 1
fi
mkdir -p "$S"/{state,spool,log} /etc/slurm
# the config must be at the default path: the jobstep plugin drops SLURM_CONF
cat > "$CONF" <<CONF
$MARK
ClusterName=aqbench-ci
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$S/state
SlurmdSpoolDir=$S/spool
SlurmctldPidFile=$S/slurmctld.pid
SlurmdPidFile=$S/slurmd.pid
SlurmctldLogFile=$S/log/slurmctld.log
SlurmdLogFile=$S/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MinJobAge=3600
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$(( $(free -m | awk '/^Mem:/{print $2}') * 90 / 100 )) State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF

stop() {  # by PID, then the working files (kept when a step failed, for its logs)
  local rc=$? pids=() pidfile
  set +e  # cleanup must not turn a green run red
  for pidfile in "$S/slurmd.pid" "$S/slurmctld.pid" /run/munge/munged.pid; do
    if [ -f "$pidfile" ]; then pids+=("$(cat "$pidfile")"); fi
  done
  [ "${#pids[@]}" -gt 0 ] && kill "${pids[@]}" 2>/dev/null
  # slurmctld writes its state on SIGTERM: removing the directory before it exits fails with "Directory not empty"
  for _ in $(seq 30); do kill -0 "${pids[@]}" 2>/dev/null || break; sleep 1; done
  if [ "$rc" = 0 ]; then
    rm -rf "$WORK" || echo "slurm-ci: warning: could not remove $WORK" >&2
  else
    echo "slurm-ci: failed; logs kept in $WORK" >&2
  fi
  exit "$rc"
}
trap stop EXIT
# daemons left by an earlier run of this script (the configuration is ours, checked above) go first
for daemon in slurmd slurmctld munged; do pkill -x "$daemon" 2>/dev/null || true; done
sleep 1
install -d -o munge -g munge -m 0755 /run/munge
runuser -u munge -- /usr/sbin/munged
/usr/sbin/slurmctld
/usr/sbin/slurmd -N localhost
for _ in $(seq 60); do sinfo -h -o %T 2>/dev/null | grep -qx idle && break; sleep 1; done
sinfo -h -o %T | grep -qx idle || { echo "slurm-ci: the node did not come up; $S/log:" >&2; tail -20 "$S"/log/*.log >&2; exit 1; }
say "cluster up: $(sinfo -h -o '%P %D %c %m %T')"

run() {  # run <dir> [snakemake options...]: config/ci.yaml in <dir>, killed if it hangs
  local dir=$1; shift
  timeout -s KILL 2700 "$SNAKEMAKE" -s "$REPO/workflow/Snakefile" -d "$dir" --configfile "$REPO/config/ci.yaml" "$@"
}
# one of the CI config's four tasks, every method: every rule of the DAG goes through SLURM while CI stays short
# (the rules are the same for every task; the pytest end-to-end run covers all four locally)
TASKS="tasks=[sst2]"
say "local reference run"
run "$WORK/local" --cores 2 --config "$TASKS" -- all > "$WORK/local.log" 2>&1 || { tail -40 "$WORK/local.log"; exit 1; }
say "the same DAG through SLURM (workflow/profiles/slurm)"
SLURM_OPTS=(--workflow-profile "$REPO/workflow/profiles/slurm" --jobs 2 --latency-wait 5 --slurm-status-command squeue
            --slurm-init-seconds-before-status-checks 5 --slurm-keep-successful-logs)
start=$(date +%s)
run "$WORK/slurm" "${SLURM_OPTS[@]}" --config "$TASKS" -- all > "$WORK/slurm.log" 2>&1 || { tail -60 "$WORK/slurm.log"; exit 1; }
say "SLURM run done in $(( $(date +%s) - start )) s"

"$REPO/.venv/bin/python" - "$WORK" <<'PY'
import json, re, sys
from pathlib import Path

work = Path(sys.argv[1])
log = (work / "slurm.log").read_text()
ids = re.findall(r"submitted with SLURM jobid (\d+)", log)
slurm_logs = list((work / "slurm" / "results" / "logs" / "slurm").rglob("*.log"))
local = sorted((work / "local" / "results-ci" / "runs").rglob("metrics.json"))
if not ids or len(slurm_logs) < len(ids):
    sys.exit(f"slurm-ci: expected jobs submitted to SLURM with their logs; found {len(ids)} job ids, {len(slurm_logs)} logs")
if not local:
    sys.exit("slurm-ci: the local run wrote no metrics")
differ = []
for path in local:
    other = work / "slurm" / path.relative_to(work / "local")
    a, b = json.loads(path.read_text()), json.loads(other.read_text())
    if a["metrics"] != b["metrics"] or a["size_mb"] != b["size_mb"]:
        differ.append(f"{path.relative_to(work / 'local')}: {a['metrics']} vs {b['metrics']}")
if differ:
    sys.exit("slurm-ci: SLURM and local runs differ:\n" + "\n".join(differ))
print(f"slurm-ci: {len(ids)} jobs went through SLURM (ids {min(map(int, ids))}-{max(map(int, ids))}, "
      f"{len(slurm_logs)} SLURM logs); all {len(local)} runs' metrics equal the local run's")
PY

say "a failing job must fail the run with SLURM's status"
if run "$WORK/failing" "${SLURM_OPTS[@]}" --retries 0 --config "models={bert: {source: local, path: /nonexistent}}" \
     tasks="[sst2]" methods="[fp]" -- results-ci/models/sst2/bert/seed0 > "$WORK/failing.log" 2>&1; then
  echo "slurm-ci: the failing run succeeded" >&2; exit 1
fi
grep -q "SLURM status is: 'FAILED'" "$WORK/failing.log" || { echo "slurm-ci: no SLURM status in the failure:" >&2; tail -30 "$WORK/failing.log" >&2; exit 1; }
grep -q "has no config.json" "$WORK/failing.log" || { echo "slurm-ci: the job's own error is not shown:" >&2; tail -30 "$WORK/failing.log" >&2; exit 1; }
say "ok: the failing job came back as SLURM status FAILED with its error shown"
