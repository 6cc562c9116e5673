#!/usr/bin/env bash
# Start, stop or inspect a single-node Slurm cluster on Debian 12, as root, without systemd.
#
#   bash ci/start-slurm.sh [start]   # (re)write slurm.conf, start munged + slurmctld + slurmd, wait for an idle node
#   bash ci/start-slurm.sh stop      # stop the three daemons (by PID file, never by name)
#   bash ci/start-slurm.sh status
#
# Idempotent: daemons already running with an unchanged slurm.conf are left alone.
# Env: SLURM_CPUS (default nproc), SLURM_MEM_MB (default 4000), SLURM_WAIT_S (default 60),
#      SLURM_KEEP_STATE=1 keeps job records across a restart (default: slurmctld -c wipes them).
#
# Partitions: "standard" (default, no time limit) and "debug" (MaxTime 60 min), both on this node.
# Accounting: no slurmdbd. Plain `sacct` says "accounting storage is disabled"; `sacct -c` reads
# the job-completion log /var/log/slurm/jobcomp.log, which expyre uses to tell how a job ended.
# Finished jobs stay visible to `squeue -t all` for MinJobAge=300 s.
#
# Why these settings (found the hard way on small VMs/containers):
#  * no systemd and often no delegated cgroup tree: proctrack/linuxproc + task/none.
#  * default scheduling waits seconds between passes: sched_interval=1, batch_sched_delay=0, bf_interval=1.
#  * ReturnToService=2: after a restart the node comes back by itself instead of staying DOWN.
#  * SlurmctldHost/NodeAddr pinned to 127.0.0.1: the hostname may not resolve.
set -euo pipefail

CTLD_PID=/run/slurmctld.pid
SLURMD_PID=/run/slurmd.pid
MUNGE_PID=/run/munge/munged.pid
CONF=/etc/slurm/slurm.conf
HERE=$(cd "$(dirname "$0")" && pwd)

log() { echo "[start-slurm $(date +%T)] $*" >&2; }

# alive PIDFILE COMM: the pid in PIDFILE exists and really is COMM (pid files outlive reboots)
alive() {
    local pid
    [ -s "$1" ] || return 1
    pid=$(cat "$1")
    kill -0 "$pid" 2>/dev/null || return 1
    [ "$(ps -o comm= -p "$pid" 2>/dev/null)" = "$2" ]
}

stop_one() {
    local pid i
    if alive "$1" "$2"; then
        pid=$(cat "$1")
        log "stopping $2 (pid $pid)"
        kill "$pid" 2>/dev/null || true
        for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then log "$2 ignored SIGTERM, sending SIGKILL"; kill -9 "$pid" || true; fi
    fi
    rm -f "$1"
}

case "${1:-start}" in
    stop)
        stop_one "$SLURMD_PID" slurmd
        stop_one "$CTLD_PID" slurmctld
        stop_one "$MUNGE_PID" munged
        exit 0 ;;
    status)
        for p in "$MUNGE_PID:munged" "$CTLD_PID:slurmctld" "$SLURMD_PID:slurmd"; do
            if alive "${p%%:*}" "${p##*:}"; then echo "${p##*:} running (pid $(cat "${p%%:*}"))"
            else echo "${p##*:} stopped"; fi
        done
        sinfo 2>/dev/null || true
        exit 0 ;;
    start) ;;
    *) echo "usage: $0 [start|stop|status]" >&2; exit 2 ;;
esac

t0=$(date +%s.%N)
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null \
    || ! command -v munged >/dev/null; then
    bash "$HERE/install-system-packages.sh"
fi

HOST=$(hostname -s)
CPUS=${SLURM_CPUS:-$(nproc)}
MEM=${SLURM_MEM_MB:-4000}
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
NEW=$(mktemp)
cat > "$NEW" <<CONF
# written by ci/start-slurm.sh: one node, no systemd, no slurmdbd
ClusterName=expyreci
SlurmctldHost=${HOST}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=${CTLD_PID}
SlurmdPidFile=${SLURMD_PID}
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=1,sched_min_interval=0,batch_sched_delay=0,sched_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=/var/log/slurm/jobcomp.log
MinJobAge=300
MaxJobCount=20000
KillWait=5
InactiveLimit=0
SlurmdTimeout=300
NodeName=${HOST} NodeAddr=127.0.0.1 CPUs=${CPUS} Sockets=1 CoresPerSocket=${CPUS} ThreadsPerCore=1 RealMemory=${MEM} State=UNKNOWN
PartitionName=standard Nodes=ALL Default=YES MaxTime=INFINITE State=UP
PartitionName=debug Nodes=ALL Default=NO MaxTime=60 State=UP
CONF
CHANGED=1
if [ -f "$CONF" ] && cmp -s "$NEW" "$CONF"; then CHANGED=0; fi
cp "$NEW" "$CONF"; chmod 644 "$CONF"; rm -f "$NEW"

# munge: slurm's authentication; its key must belong to the munge user and be private
if [ ! -s /etc/munge/munge.key ]; then
    log "creating munge key"
    mkdir -p /etc/munge; chown munge:munge /etc/munge; chmod 700 /etc/munge
    runuser -u munge -- mungekey -c
fi
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge/munge.key
chmod 755 /run/munge; chmod 400 /etc/munge/munge.key
if ! alive "$MUNGE_PID" munged; then
    log "starting munged"
    rm -f /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock "$MUNGE_PID"
    runuser -u munge -- /usr/sbin/munged
    for i in $(seq 1 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
fi
munge -n | unmunge >/dev/null || { log "munge self-test failed; see /var/log/munge/munged.log"; exit 1; }

if [ "$CHANGED" = 1 ]; then
    # node name / CPU count may have changed: a restart is simpler and safer than reconfigure
    stop_one "$SLURMD_PID" slurmd
    stop_one "$CTLD_PID" slurmctld
fi
if ! alive "$CTLD_PID" slurmctld; then
    CLEAN=-c; [ "${SLURM_KEEP_STATE:-0}" = 1 ] && CLEAN=
    # forgotten jobs must not be "found" in the completion log if job ids start over
    if [ -n "$CLEAN" ] && [ -s /var/log/slurm/jobcomp.log ]; then
        mv /var/log/slurm/jobcomp.log "/var/log/slurm/jobcomp.log.$(date +%Y%m%d%H%M%S)"
    fi
    log "starting slurmctld $CLEAN"
    slurmctld $CLEAN
fi
if ! alive "$SLURMD_PID" slurmd; then
    log "starting slurmd"
    slurmd
fi
t1=$(date +%s.%N)

WAIT=${SLURM_WAIT_S:-60}
state=
for i in $(seq 1 $((WAIT * 5))); do
    state=$(sinfo -h -n "$HOST" -o %T 2>/dev/null | head -1 || true)
    case "$state" in
        idle|mixed|allocated) break ;;
        down*|drain*|fail*) scontrol update NodeName="$HOST" State=RESUME 2>/dev/null || true ;;
    esac
    sleep 0.2
done
case "$state" in
    idle|mixed|allocated) ;;
    *)  log "node $HOST not ready (state '$state') after ${WAIT}s"
        tail -20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
        exit 1 ;;
esac
t2=$(date +%s.%N)
sinfo
log "$(awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN{printf "ready: start %.1fs, wait for node %.1fs", b-a, c-b}')" \
    "(munged $(cat $MUNGE_PID), slurmctld $(cat $CTLD_PID), slurmd $(cat $SLURMD_PID))"
