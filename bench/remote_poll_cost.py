"""What one status poll costs: a new ssh login per command vs. the multiplexed SshTransport,
and the scheduler query itself (squeue / qstat) on this machine.

    .venv/bin/python bench/remote_poll_cost.py [HOST] [N]     # default HOST cihost, N 10

Needs the CI daemons (ci/start-slurm.sh, ci/start-sge.sh, ci/start-sshd.sh). Prints a table
of median milliseconds per command; rows whose tool is missing are skipped.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from expyre.schedulers.sge import SGEScheduler
from expyre.schedulers.slurm import SlurmScheduler
from expyre.ssh import SshTransport


def median_ms(action, n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        action()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def main() -> None:
    host = sys.argv[1] if len(sys.argv) > 1 else "cihost"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    rows = []

    def local(argv):
        return lambda: subprocess.run(argv, capture_output=True, check=True)

    if shutil.which("squeue"):
        rows.append(
            (
                "squeue status poll, here",
                median_ms(local(SlurmScheduler().status_command(["1"])), n),
            )
        )
    if shutil.which("qstat"):
        rows.append(
            (
                "qstat -xml status poll, here",
                median_ms(local(SGEScheduler().status_command(["1"])), n),
            )
        )
    plain = ["ssh", "-o", "BatchMode=yes", "-o", "ControlPath=none", host, "true"]
    if subprocess.run(plain, capture_output=True).returncode == 0:
        rows.append((f"ssh {host} true, new login each time", median_ms(local(plain), n)))
        with tempfile.TemporaryDirectory(prefix="xprb") as ctl:
            transport = SshTransport(host, control_dir=ctl)
            transport.run(["true"])  # opens the shared connection
            rows.append(
                (
                    f"SshTransport.run(['true']) to {host}, multiplexed",
                    median_ms(lambda: transport.run(["true"]), n),
                )
            )
            if shutil.which("squeue"):
                argv = SlurmScheduler().status_command(["1"])
                rows.append(
                    (
                        f"squeue status poll via {host}, multiplexed",
                        median_ms(lambda: transport.run(argv), n),
                    )
                )
            transport.close()
    width = max(len(r[0]) for r in rows) if rows else 10
    print(f"{'command':<{width}}  median ms (n={n})")
    for name, ms in rows:
        print(f"{name:<{width}}  {ms:8.1f}")


if __name__ == "__main__":
    main()
