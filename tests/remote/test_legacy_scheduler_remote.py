"""0.1.6's scheduler methods on every configured system (over ssh for remote hosts).

``expyre.config.systems[name].scheduler`` runs 0.1.6's ``submit``/``status`` through the
system's own transport: here one tiny job per system, run to completion, its output read
back where it ran.
"""

import posixpath
import time

import pytest

import expyre.config


@pytest.mark.remote
def test_scheduler_submit_and_status_through_the_system(remote_project, sys_name):
    system = expyre.config.systems[sys_name]
    sched = system.scheduler
    base = system.rundir or str(remote_project / "legacy")
    remote_dir = posixpath.join(base, f"legacy_{int(time.time() * 1000)}")
    partition = sorted(system.partitions)[0]
    nodes = {
        "num_nodes": 1,
        "num_cores": 1,
        "num_cores_per_node": system.partitions[partition]["num_cores"],
    }
    remote_id = sched.submit(
        "xprlegacy_sys",
        remote_dir,
        partition,
        ["echo ran on $(hostname) > out.txt"],
        120,
        [],
        nodes,
    )
    status = None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        status = sched.status(remote_id)[remote_id]
        if status not in ("queued", "running", "held"):
            break
        time.sleep(1)
    assert status == "done"
    out = system.run(["cat", posixpath.join(remote_dir, "out.txt")], what="read the job output")
    assert out.stdout.startswith("ran on ")
