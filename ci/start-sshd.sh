#!/usr/bin/env bash
# Start or stop a private OpenSSH server on 127.0.0.1:$SSHD_PORT for root, without systemd, so the
# tests can treat "this machine over ssh + rsync" as a remote cluster login node.
#
#   bash ci/start-sshd.sh [start]   # keys, config, start sshd, self-test ssh and rsync
#   bash ci/start-sshd.sh stop      # stop the sshd this script started (by PID file)
#
# Env: SSHD_PORT (default 2222), SSHD_ALIAS (default cihost).
# The system sshd config (/etc/ssh/sshd_config) is left alone; ours lives in /var/lib/ci-sshd.
# Client side (root): ~/.ssh/id_ed25519 (created if absent) authorised for root, the host key pinned
# in ~/.ssh/known_hosts, and an alias block in ~/.ssh/config, so `ssh cihost` and `rsync ... cihost:dir`
# work with no options.
# Commands run over ssh get sshd's default PATH, not the caller's (no pyenv shims, no venv):
# `SetEnv PATH=...` passes the starting shell's PATH on to every session.
set -euo pipefail

PORT=${SSHD_PORT:-2222}
ALIAS=${SSHD_ALIAS:-cihost}
D=/var/lib/ci-sshd
CONF=$D/sshd_config
PIDF=$D/sshd.pid
HERE=$(cd "$(dirname "$0")" && pwd)
SSHDIR=${HOME:-/root}/.ssh
log() { echo "[start-sshd $(date +%T)] $*" >&2; }
alive() { [ -s "$PIDF" ] && kill -0 "$(cat "$PIDF")" 2>/dev/null && [ "$(ps -o comm= -p "$(cat "$PIDF")")" = sshd ]; }

case "${1:-start}" in
    stop)
        if alive; then
            pid=$(cat "$PIDF"); log "stopping sshd (pid $pid)"; kill "$pid"
            for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        fi
        rm -f "$PIDF"; exit 0 ;;
    start) ;;
    *) echo "usage: $0 [start|stop]" >&2; exit 2 ;;
esac

t0=$(date +%s.%N)
if [ ! -x /usr/sbin/sshd ] || ! command -v ssh >/dev/null || ! command -v rsync >/dev/null; then
    bash "$HERE/install-system-packages.sh"
fi

mkdir -p "$D" /run/sshd; chmod 700 "$D"; chmod 755 /run/sshd   # /run/sshd: privilege-separation dir
[ -s "$D/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -C ci-sshd-host -f "$D/ssh_host_ed25519_key"

mkdir -p "$SSHDIR"; chmod 700 "$SSHDIR"
[ -s "$SSHDIR/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C ci-root -f "$SSHDIR/id_ed25519"
touch "$SSHDIR/authorized_keys"; chmod 600 "$SSHDIR/authorized_keys"
grep -qxF "$(cat "$SSHDIR/id_ed25519.pub")" "$SSHDIR/authorized_keys" || cat "$SSHDIR/id_ed25519.pub" >> "$SSHDIR/authorized_keys"

cat > "$CONF" <<CONF
# written by ci/start-sshd.sh
Port $PORT
ListenAddress 127.0.0.1
HostKey $D/ssh_host_ed25519_key
PidFile $PIDF
PermitRootLogin prohibit-password
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes yes
UseDNS no
MaxStartups 100:30:200
MaxSessions 100
X11Forwarding no
PrintMotd no
LogLevel VERBOSE
SetEnv PATH=$PATH
Subsystem sftp /usr/lib/openssh/sftp-server
CONF
/usr/sbin/sshd -t -f "$CONF"

if alive; then
    log "sshd already running (pid $(cat "$PIDF")): reloading its config"
    kill -HUP "$(cat "$PIDF")"; sleep 0.3
else
    log "starting sshd on 127.0.0.1:$PORT"
    /usr/sbin/sshd -f "$CONF" -E "$D/sshd.log"    # absolute path required (sshd re-execs itself)
fi
for i in $(seq 1 50); do alive && (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break; sleep 0.1; done

KH=$SSHDIR/known_hosts; touch "$KH"; chmod 600 "$KH"
ssh-keygen -R "[localhost]:$PORT" -f "$KH" >/dev/null 2>&1 || true
ssh-keygen -R "[127.0.0.1]:$PORT" -f "$KH" >/dev/null 2>&1 || true
echo "[localhost]:$PORT,[127.0.0.1]:$PORT $(cut -d' ' -f1,2 "$D/ssh_host_ed25519_key.pub")" >> "$KH"

CFG=$SSHDIR/config; touch "$CFG"; chmod 600 "$CFG"
sed -i '/^# >>> ci-sshd >>>$/,/^# <<< ci-sshd <<<$/d' "$CFG"
cat >> "$CFG" <<CFG
# >>> ci-sshd >>>
Host $ALIAS
    HostName 127.0.0.1
    Port $PORT
    User root
    IdentityFile $SSHDIR/id_ed25519
    HostKeyAlias [127.0.0.1]:$PORT
    BatchMode yes
# <<< ci-sshd <<<
CFG

ssh -p "$PORT" -o BatchMode=yes localhost true
ssh "$ALIAS" true
T=$(mktemp -d); echo hello > "$T/f"
rsync -a -e "ssh -p $PORT -o BatchMode=yes" "$T/" "localhost:$T.copy/"
cmp "$T/f" "$T.copy/f"; rm -rf "$T" "$T.copy"
t1=$(date +%s.%N)
log "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "ready in %.1fs", b-a}') (pid $(cat "$PIDF"), 127.0.0.1:$PORT, alias $ALIAS)"
