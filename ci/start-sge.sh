#!/usr/bin/env bash
# Start or stop a single-host Grid Engine (Debian 12 gridengine 8.1.9) as root, without systemd.
# Queue all.q with nproc slots, parallel environment "smp" (allocation $pe_slots), root may submit.
#
#   bash ci/start-sge.sh [start]   # configure, start sge_qmaster + sge_execd, wait until a test job runs
#   bash ci/start-sge.sh stop      # stop both daemons (by PID file, never by name)
#
# Idempotent: running daemons are kept; the configuration edits are re-applied (they are cheap).
#
# Why these settings:
#  * 127.0.0.1 reverse-resolves to "localhost" while gethostname() is e.g. "vm"; SGE then rejects
#    clients -> host_aliases "<hostname> localhost".
#  * min_uid/min_gid default 1000 rejects root's jobs -> 0. Must be set BEFORE execd starts, or the
#    first job fails and puts the queue in error state E (cleared below with `qmod -c`).
#  * load_thresholds np_load_avg=1.75 puts a busy 2-core queue in alarm state -> NONE.
#  * schedule_interval 15 s -> 1 s; flush_submit_sec/flush_finish_sec 1; accounting flush_time 15 s -> 1 s
#    (qacct is how a job that left the queue is told apart: finished, killed at h_rt, deleted).
#  * qconf -mconf/-msconf/-aq open $EDITOR -> a generated sed script is the editor.
#  * never /etc/init.d/gridengine-* stop: it kills by executable name.
set -euo pipefail
export SGE_ROOT=/var/lib/gridengine SGE_CELL=default
QM_PID=/var/spool/gridengine/qmaster/qmaster.pid
HERE=$(cd "$(dirname "$0")" && pwd)

log() { echo "[start-sge $(date +%T)] $*" >&2; }
alive() {  # alive PIDFILE COMM
    [ -n "$1" ] && [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null \
        && [ "$(ps -o comm= -p "$(cat "$1")")" = "$2" ]
}
execd_pidfile() { ls /var/spool/gridengine/execd/*/execd.pid 2>/dev/null | head -1 || true; }
stop_one() {
    local pid i
    if alive "$1" "$2"; then
        pid=$(cat "$1"); log "stopping $2 (pid $pid)"; kill "$pid"
        for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" || true; fi
    fi
}

case "${1:-start}" in
    stop) stop_one "$(execd_pidfile)" sge_execd; stop_one "$QM_PID" sge_qmaster; exit 0 ;;
    start) ;;
    *) echo "usage: $0 [start|stop]" >&2; exit 2 ;;
esac

t0=$(date +%s.%N)
H=$(hostname)
if ! command -v qconf >/dev/null || [ ! -x /usr/lib/gridengine/sge_qmaster ] || [ ! -x /usr/lib/gridengine/sge_execd ]; then
    bash "$HERE/install-system-packages.sh"
fi
COMMON=$SGE_ROOT/$SGE_CELL/common
[ -f "$COMMON/bootstrap" ] || { log "no $COMMON/bootstrap: the gridengine package did not initialise cell 'default' (debconf gridengineconfig=false?)"; exit 1; }
echo "$H" > "$COMMON/act_qmaster"
echo "$H localhost" > "$COMMON/host_aliases"
chown sgeadmin:sgeadmin "$COMMON/act_qmaster" "$COMMON/host_aliases"
mkdir -p /var/spool/gridengine/execd /var/run/gridengine
chown sgeadmin:sgeadmin /var/spool/gridengine/execd /var/run/gridengine

if ! alive "$QM_PID" sge_qmaster; then
    log "starting sge_qmaster"
    /usr/sbin/sge_qmaster
fi
for i in $(seq 1 100); do qconf -sh >/dev/null 2>&1 && break; sleep 0.2; done
qconf -sh >/dev/null

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
editor() {  # editor NAME SED-EXPR...: write a script usable as $EDITOR that applies the expressions
    local f=$T/$1; shift
    { echo '#!/bin/sh'; printf 'sed -i'; for e in "$@"; do printf " -e '%s'" "$e"; done; echo ' "$1"'; } > "$f"
    chmod +x "$f"; echo "$f"
}
EDITOR=$(editor gconf 's/^min_uid .*/min_uid 0/' 's/^min_gid .*/min_gid 0/' 's/^load_report_time .*/load_report_time 0:0:5/' \
    's/flush_time=[0-9:]*/flush_time=00:00:01/') \
    qconf -mconf global >/dev/null
EDITOR=$(editor sconf 's/^schedule_interval .*/schedule_interval 0:0:1/' 's/^flush_submit_sec .*/flush_submit_sec 1/' \
    's/^flush_finish_sec .*/flush_finish_sec 1/' 's/^job_load_adjustments .*/job_load_adjustments NONE/' \
    's/^load_adjustment_decay_time .*/load_adjustment_decay_time 0:0:0/') qconf -msconf >/dev/null
qconf -sh | grep -qx "$H" || qconf -ah "$H" >/dev/null
qconf -ss 2>/dev/null | grep -qx "$H" || qconf -as "$H" >/dev/null
if ! qconf -se "$H" >/dev/null 2>&1; then
    printf 'hostname %s\nload_scaling NONE\ncomplex_values NONE\nuser_lists NONE\nxuser_lists NONE\nprojects NONE\nxprojects NONE\nusage_scaling NONE\nreport_variables NONE\n' "$H" > "$T/exechost"
    qconf -Ae "$T/exechost" >/dev/null
fi
qconf -shgrp @allhosts >/dev/null 2>&1 || { printf 'group_name @allhosts\nhostlist %s\n' "$H" > "$T/hgrp"; qconf -Ahgrp "$T/hgrp" >/dev/null; }
if ! qconf -sp smp >/dev/null 2>&1; then
    printf '%s\n' 'pe_name smp' 'slots 999' 'user_lists NONE' 'xuser_lists NONE' 'start_proc_args /bin/true' \
        'stop_proc_args /bin/true' 'allocation_rule $pe_slots' 'control_slaves FALSE' 'job_is_first_task TRUE' \
        'urgency_slots min' 'accounting_summary FALSE' 'qsort_args NONE' > "$T/pe"
    qconf -Ap "$T/pe" >/dev/null
fi
QED=$(editor queue 's/^hostlist .*/hostlist @allhosts/' "s/^slots .*/slots $(nproc)/" 's/^pe_list .*/pe_list make smp/' \
    's|^shell .*|shell /bin/bash|' 's/^shell_start_mode .*/shell_start_mode unix_behavior/' 's/^load_thresholds .*/load_thresholds NONE/')
if qconf -sq all.q >/dev/null 2>&1; then EDITOR=$QED qconf -mq all.q >/dev/null; else EDITOR=$QED qconf -aq all.q >/dev/null; fi

f=$(execd_pidfile)
if ! alive "$f" sge_execd; then
    log "starting sge_execd"
    /usr/sbin/sge_execd
fi
qmod -c all.q >/dev/null 2>&1 || true
# ready = a trivial job runs to completion
if ! (cd "$T" && timeout 90 qsub -sync y -b y -o /dev/null -e /dev/null -N sge_ready true >/dev/null); then
    log "test job did not complete"; qstat -f >&2; exit 1
fi
t1=$(date +%s.%N)
qstat -f
log "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "ready in %.1fs", b-a}') (qmaster $(cat $QM_PID), execd $(cat "$(execd_pidfile)"))"
