#!/usr/bin/env bash
# Install (once) every Debian package the test suite needs, in ONE apt-get call.
#
#   bash ci/install-system-packages.sh
#
# Idempotent: packages already installed are skipped without touching apt at all.
# Contents:
#   Slurm (single node):  slurmctld slurmd slurm-client munge
#   Grid Engine:          gridengine-master gridengine-exec gridengine-client
#   ssh + staging:        openssh-server openssh-client rsync
#   HTML report test:     chromium (headless: opens `xpr report` pages, checks the DOM)
# NB: gridengine-client conflicts with slurm-wlm-torque (both ship qsub/qstat); never add the latter.
set -euo pipefail

PKGS=(
    slurmctld slurmd slurm-client munge
    gridengine-master gridengine-exec gridengine-client
    openssh-server openssh-client rsync
    chromium
)

log() { echo "[install-system-packages $(date +%T)] $*" >&2; }

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    log "all ${#PKGS[@]} packages already installed"
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
# Grid Engine's debconf questions: cell "default", configure it, this host is the master.
H=$(hostname)
for p in gridengine-common gridengine-master gridengine-client; do
    printf '%s\n' "$p shared/gridenginecell string default" \
        "$p shared/gridengineconfig boolean true" \
        "$p shared/gridenginemaster string $H"
done | debconf-set-selections

log "installing: ${missing[*]}"
install() {
    apt-get install -y -q -o DPkg::Lock::Timeout=300 --no-install-recommends "${missing[@]}"
}
# A stale package list is the usual failure on a fresh machine: update once and retry.
install || { apt-get update -q -o DPkg::Lock::Timeout=300; install; }
log "done"
