"""The embedded local queue on its own: submit, status of many jobs, cancel, crash safety."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from expyre.localqueue import LocalQueue, read_header
from expyre.schedulers import get_scheduler
from expyre.schedulers.base import JobRequest, QueueState


def _script(directory, name, body, cores=1, capacity=2, time_s=None):
    lines = [
        "#!/bin/bash",
        f"#LOCAL --job-name={name}",
        "#LOCAL --partition=p",
        f"#LOCAL --capacity={capacity}",
        f"#LOCAL --cores={cores}",
        f"#LOCAL --stdout='{name} out.txt'",
        f"#LOCAL --stderr={name}.err",
    ]
    if time_s:
        lines.append(f"#LOCAL --time={time_s}")
    path = Path(directory) / f"{name}.sh"
    path.write_text("\n".join([*lines, body, ""]))
    return path


def _cli(queue_dir, *args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "expyre.localqueue", "--queue-dir", str(queue_dir), *args],
        capture_output=True, text=True, cwd=cwd, check=True,
    ).stdout  # fmt: skip


def _wait_state(queue, qid, states, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = queue.state(qid)
        if state in states:
            return state
        time.sleep(0.1)
    raise AssertionError(f"job {qid} is {queue.state(qid)}, expected {states}")


def test_header_parsing_keeps_quoted_values(tmp_path):
    path = _script(tmp_path, "a", "true")
    header = read_header(path)
    assert header["stdout"] == "a out.txt" and header["cores"] == "1"


def test_submit_status_many_and_outputs(tmp_path):
    qd = tmp_path / "q"
    ids = [
        _cli(
            qd,
            "submit",
            str(_script(tmp_path, f"j{i}", f"echo hello {i}; exit {i % 2}")),
            cwd=tmp_path,
        ).strip()
        for i in range(4)
    ]
    assert ids == ["1", "2", "3", "4"]
    queue = LocalQueue(qd)
    for qid in ids:
        _wait_state(queue, qid, {"completed", "failed"})
    lines = _cli(qd, "status", *ids, "999").split("\n")
    assert [line for line in lines if line] == [
        "1 completed",
        "2 failed",
        "3 completed",
        "4 failed",
    ]
    assert (tmp_path / "j2 out.txt").read_text() == "hello 2\n"
    assert _cli(qd, "list", "--name-prefix", "j3") == "4 j3\n"


def test_cancel_queued_and_running_jobs(tmp_path):
    qd = tmp_path / "q"
    queue = LocalQueue(qd)
    running = queue.submit(str(_script(tmp_path, "big", "sleep 300", cores=2)), str(tmp_path))
    _wait_state(queue, running, {"running"})
    waiting = queue.submit(str(_script(tmp_path, "small", "sleep 300")), str(tmp_path))
    time.sleep(0.5)
    assert queue.state(waiting) == "queued"  # no free core while "big" holds both
    assert queue.cancel(waiting) and queue.cancel(running)
    assert _wait_state(queue, waiting, {"cancelled"}) == "cancelled"
    assert _wait_state(queue, running, {"cancelled"}) == "cancelled"
    assert not queue.cancel("12345")


def test_time_limit(tmp_path):
    queue = LocalQueue(tmp_path / "q")
    qid = queue.submit(str(_script(tmp_path, "t", "sleep 300", time_s=1)), str(tmp_path))
    assert _wait_state(queue, qid, {"timeout", "completed", "failed"}) == "timeout"


def test_too_many_cores_fails_at_once(tmp_path):
    queue = LocalQueue(tmp_path / "q")
    qid = queue.submit(str(_script(tmp_path, "huge", "true", cores=3, capacity=2)), str(tmp_path))
    assert _wait_state(queue, qid, {"failed", "completed"}) == "failed"
    assert "asks for 3 cores" in (tmp_path / "huge.err").read_text()


def test_crashed_wrapper_and_job_free_their_cores(tmp_path):
    queue = LocalQueue(tmp_path / "q")
    first = queue.submit(str(_script(tmp_path, "crash", "sleep 300", cores=2)), str(tmp_path))
    _wait_state(queue, first, {"running"})
    record = queue.jobs / first
    # "running" is reported once cores are taken, a moment before the job's pid is recorded
    deadline = time.monotonic() + 60
    while not (record / "child_pid").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    for name in ("pid", "child_pid"):  # kill -9 everything, launcher first: nothing records an exit
        pgid = int((record / name).read_text().split()[0])
        os.killpg(pgid, signal.SIGKILL)
    # nothing of it failed by itself: it vanished with its processes, as in a reboot
    assert _wait_state(queue, first, {"failed", "vanished"}) == "vanished"
    second = queue.submit(str(_script(tmp_path, "next", "echo ran", cores=2)), str(tmp_path))
    assert _wait_state(queue, second, {"completed", "failed"}) == "completed"


def test_local_scheduler_is_pure_translation(tmp_path):
    sched = get_scheduler("local", queue_dir="/q dir", python_cmd="/venv/bin/python -X utf8",
                          partition_cores={"p": 4})  # fmt: skip
    req = JobRequest("name_1", "p", 1, 2, 2, 60, None, "/a b/out", "/a b/err")
    header = sched.default_header(req)
    assert "#LOCAL --capacity=4" in header and "#LOCAL --cores=2" in header
    assert "#LOCAL --stdout='/a b/out'" in header
    assert sched.submit_command("/j/s.sh", "/j")[:5] == [
        "/venv/bin/python",
        "-X",
        "utf8",
        "-m",
        "expyre.localqueue",
    ]
    assert sched.parse_submit_output("17\n") == "17"
    with pytest.raises(ValueError, match="expected one job id"):
        sched.parse_submit_output("error: nope")
    states = sched.parse_status_output(
        "1 running\n2 timeout\n3 weird\n9 completed\n", ["1", "2", "3"]
    )
    assert states == {"1": QueueState.RUNNING, "2": QueueState.TIMEOUT, "3": QueueState.UNKNOWN}
    assert sched.parse_find_by_name_output("4 abc_1\n5 zzz\n", "abc") == {"abc_1": "4"}


def test_unknown_scheduler_name():
    with pytest.raises(ValueError, match="unknown scheduler 'condor'"):
        get_scheduler("condor")


def test_two_projects_share_the_machine_cores(tmp_path, monkeypatch):
    """Two queue directories (two projects) on one machine: together never over capacity."""
    cores = tmp_path / "machine cores"
    monkeypatch.setenv("EXPYRE_LOCAL_CORES_DIR", str(cores))
    log = tmp_path / "intervals"
    body = f'echo "start $(date +%s.%N)" >> {log}_$QID; sleep 1; echo "end $(date +%s.%N)" >> {log}_$QID'
    jobs = []
    for project in ("p1", "p2"):
        queue = LocalQueue(tmp_path / project / "q")  # the default cores dir, from the env
        assert queue.cores_dir == cores
        for i in range(2):
            name = f"{project}_{i}"
            script = _script(tmp_path, name, f"QID={name}\n{body}", capacity=1)
            jobs.append((queue, queue.submit(str(script), str(tmp_path))))
    for queue, qid in jobs:
        assert _wait_state(queue, qid, {"completed", "failed"}) == "completed"
    intervals = []
    for path in tmp_path.glob("intervals_*"):
        words = path.read_text().split()
        intervals.append((float(words[1]), float(words[3])))
    assert len(intervals) == 4
    intervals.sort()
    # capacity 1 shared by both projects: each job starts after the previous one ended
    for (_, end), (start, _) in zip(intervals, intervals[1:], strict=False):
        assert start >= end
    assert sorted(p.name for p in cores.iterdir()) == ["admission.lock", "core0.lock"]
    assert oct(cores.stat().st_mode & 0o777) == "0o700"


def test_core_lock_dir_of_another_user_is_refused(tmp_path):
    shared = tmp_path / "open"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)  # others may write: anyone could block our jobs
    queue = LocalQueue(tmp_path / "q", cores_dir=shared)
    with pytest.raises(PermissionError, match="EXPYRE_LOCAL_CORES_DIR"):
        queue.submit(str(_script(tmp_path, "x", "true")), str(tmp_path))


def test_a_job_ending_touches_the_queue_directory(tmp_path):
    """The queue directory's mtime is the change marker a waiting driver watches."""
    qd = tmp_path / "q"
    queue = LocalQueue(qd)
    first = queue.submit(str(_script(tmp_path, "m1", "true")), str(tmp_path))
    _wait_state(queue, first, {"completed"})
    os.utime(qd, (1, 1))
    qid = queue.submit(str(_script(tmp_path, "m2", "exit 3")), str(tmp_path))
    _wait_state(queue, qid, {"failed"})
    assert qd.stat().st_mtime > 1
    scheduler = get_scheduler("local", queue_dir=str(qd))
    assert scheduler.change_marker() == str(qd)


def test_a_copied_queue_never_touches_the_original_jobs(tmp_path):
    original = LocalQueue(tmp_path / "proj" / "q")
    qid = original.submit(str(_script(tmp_path, "long", "sleep 300")), str(tmp_path))
    _wait_state(original, qid, {"running"})
    subprocess.run(["cp", "-a", str(tmp_path / "proj"), str(tmp_path / "proj2")], check=True)
    copy = LocalQueue(tmp_path / "proj2" / "q")
    assert copy.state(qid) is None  # not a job of the copy
    assert copy.list("long") == []
    assert not copy.cancel(qid)
    time.sleep(0.5)
    assert original.state(qid) == "running"  # the original's job was not signalled
    assert original.list("long") == [(qid, "long")]
    assert original.cancel(qid)
    assert _wait_state(original, qid, {"cancelled"}) == "cancelled"


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def test_cancel_between_start_and_recorded_child_kills_the_job(tmp_path, monkeypatch):
    """A cancel that lands after the job started but before its pid was recorded used to
    reach only the wrapper: a job ignoring SIGTERM kept running, untracked, after the
    wrapper was killed. The delay hook holds the wrapper in exactly that window."""
    monkeypatch.setenv("EXPYRE_LOCALQUEUE_TEST_RECORD_DELAY", "2")
    queue = LocalQueue(tmp_path / "q")
    pid_file = tmp_path / "job.pid"
    body = f"trap '' TERM\necho $$ > {pid_file}\nsleep 120"
    qid = queue.submit(str(_script(tmp_path, "stubborn", body)), str(tmp_path))
    deadline = time.monotonic() + 120
    while not (pid_file.exists() and pid_file.read_text().strip()):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    record = tmp_path / "q" / "jobs" / qid
    assert not (record / "child_pid").exists()  # inside the window
    assert queue.cancel(qid)
    job_pid = int(pid_file.read_text())
    deadline = time.monotonic() + 30
    while _alive(job_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(job_pid)
    assert _wait_state(queue, qid, {"cancelled"}) == "cancelled"


def test_cancel_before_the_job_starts_never_starts_it(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPYRE_LOCALQUEUE_TEST_SPAWN_DELAY", "2")
    queue = LocalQueue(tmp_path / "q")
    marker = tmp_path / "ran"
    qid = queue.submit(str(_script(tmp_path, "never", f"touch {marker}")), str(tmp_path))
    record = tmp_path / "q" / "jobs" / qid
    deadline = time.monotonic() + 120
    while not (record / "started").exists():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert queue.cancel(qid)
    assert _wait_state(queue, qid, {"cancelled"}) == "cancelled"
    time.sleep(3)  # longer than the delay: a job started despite the cancel would be seen
    assert not marker.exists()
