#!/usr/bin/env bash
# Write the expyre systems the remote tests (pytest --runremote) use, for the CI daemons
# started by ci/start-slurm.sh, ci/start-sge.sh and ci/start-sshd.sh.
#
#   bash ci/write-test-config.sh [DIR | FILE.json]   # default: $HOME/.expyre/config.json
#
# A directory argument (e.g. the $EXPYRE_PYTEST_CONFIG_DIR the tests read) gets DIR/config.json.
# Idempotent: only the systems below are (re)written; other systems and keys in CONFIG stay.
#   local         this machine, embedded local queue
#   slurm         this machine's Slurm (host null): partitions "standard" and "debug" (1 h)
#   sge           this machine's Grid Engine (host null): queue all.q
#   remote_slurm  the same Slurm reached through ssh to 127.0.0.1:2222 (alias cihost), with a
#                 remote run directory distinct from the local stage directories, and the
#                 project's venv put first on PATH by "commands" (so python3 there has wfl)
# Tests pick systems with EXPYRE_PYTEST_SYSTEMS (a regex), e.g. EXPYRE_PYTEST_SYSTEMS='^(slurm|sge)$'.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PROJECT=$(dirname "$HERE")
CONFIG=${1:-${HOME:-/root}/.expyre}
case "$CONFIG" in
    *.json) ;;
    *) CONFIG=$CONFIG/config.json ;;
esac
VENV_BIN=$PROJECT/.venv/bin
CORES=$(nproc)
mkdir -p "$(dirname "$CONFIG")"
[ -x "$VENV_BIN/python" ] || { echo "[write-test-config] no venv at $VENV_BIN (run ci/setup-python.sh)" >&2; exit 1; }

"$VENV_BIN/python" - "$CONFIG" "$VENV_BIN" "$CORES" <<'PY'
import json, os, sys
config_path, venv_bin, cores = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    with open(config_path) as f:
        config = json.load(f)
except FileNotFoundError:
    config = {}
systems = config.setdefault("systems", {})
systems["local"] = {
    "host": None,
    "scheduler": "local",
    "partitions": {"local": {"num_cores": cores, "max_time": None}},
}
systems["slurm"] = {
    "host": None,
    "scheduler": "slurm",
    "partitions": {
        "standard": {"num_cores": cores, "max_time": None},
        "debug": {"num_cores": cores, "max_time": "1h"},
    },
}
systems["sge"] = {
    "host": None,
    "scheduler": "sge",
    "partitions": {"all.q": {"num_cores": cores, "max_time": None}},
}
systems["remote_slurm"] = {
    "host": "cihost",
    "scheduler": "slurm",
    "rundir": "/var/tmp/expyre-ci-rundir",
    "commands": [f"export PATH={venv_bin}:$PATH"],
    "python_cmd": "python3",
    "partitions": {
        "standard": {"num_cores": cores, "max_time": None},
        "debug": {"num_cores": cores, "max_time": "1h"},
    },
}
tmp = config_path + ".tmp"
with open(tmp, "w") as f:
    json.dump(config, f, indent=2)
    f.write("\n")
os.replace(tmp, config_path)
print(f"[write-test-config] wrote systems {sorted(systems)} to {config_path}", file=sys.stderr)
PY
