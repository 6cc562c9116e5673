#!/usr/bin/env bash
# Set up everything the tests need and run them (the README's test command, via `make test`).
#   - Python venv with the project, test tools and the fitters (gap_fit, pacemaker)
#   - side venv .venv-ref with wfl 0.3.5 + expyre-wfl 0.1.6 (tests/compat compares against it)
#   - system packages: Slurm, SGE, sshd/rsync, Quantum ESPRESSO (as root, no systemd)
#   - start single-node Slurm, single-host SGE and an sshd on 127.0.0.1:2222
#   - pytest, including the tests against the live daemons (--runremote) and the slow ones
# Extra pytest arguments can be given in PYTEST_ARGS. Exit code 5 (nothing selected) is not a failure.
# Tests run in PYTEST_WORKERS parallel processes (pytest-xdist, default 4): most of the suite's
# time is spent waiting on queues and polls, not computing, so workers overlap those waits on a
# 2-core machine. Tests are written to share Slurm, SGE and sshd with each other.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
bash ci/install-system-packages.sh
bash ci/setup-python.sh "test,fit"
bash ci/install-fitters.sh
# the reference implementation, for tests/compat's both-ways comparison
bash ci/setup-reference.sh
export WFL_REFERENCE_VENV=${WFL_REFERENCE_VENV:-$PWD/.venv-ref}
bash ci/start-slurm.sh
bash ci/start-sge.sh
bash ci/start-sshd.sh
export EXPYRE_PYTEST_CONFIG_DIR=${EXPYRE_PYTEST_CONFIG_DIR:-$PWD/.ci-expyre}
# every system is configured here: a remote test that skips (instead of "not applicable:")
# means a live test did not run, and fails the run (see tests/conftest.py)
export EXPYRE_PYTEST_FAIL_ON_REMOTE_SKIPS=1
bash ci/write-test-config.sh "$EXPYRE_PYTEST_CONFIG_DIR"
echo "[run-tests] setup took $(( $(date +%s) - t0 )) s" >&2
.venv/bin/ruff check .
.venv/bin/ruff format --check .
set +e
.venv/bin/python -m pytest --runremote --runslow -q --basetemp="$PWD/.pytest-tmp" \
    -n "${PYTEST_WORKERS:-4}" --dist loadgroup --durations=25 ${PYTEST_ARGS:-} tests
rc=$?
set -e
echo "[run-tests] total $(( $(date +%s) - t0 )) s, pytest exit code $rc" >&2
if [ "$rc" -eq 5 ]; then echo "[run-tests] no tests selected (exit 5): not a failure" >&2; exit 0; fi
exit "$rc"
