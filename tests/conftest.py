"""Project-wide pytest options, with the names users' test instructions already use.

``--runremote`` enables tests marked ``remote`` (real queues / ssh hosts), ``--runslow``
enables tests marked ``slow``. ``--basetemp`` is pytest's own option and is honoured by
using ``tmp_path`` everywhere (queues may need job dirs on a shared filesystem).

With ``EXPYRE_PYTEST_FAIL_ON_REMOTE_SKIPS=1`` (set by ``ci/run-tests.sh``, i.e. ``make
test``, which configures every system the remote tests use) a SKIPPED test marked ``remote``
fails the run: there, a skip means a live test silently did not run (a daemon down, a tool
missing, no systems selected). The one exception is a test that does not apply to a system
by design; it must skip with a reason starting ``not applicable:`` (e.g.
``pytest.skip("not applicable: system is not reached over ssh")``).
"""

import os
import sys

import pytest

FAIL_ON_REMOTE_SKIPS_ENV = "EXPYRE_PYTEST_FAIL_ON_REMOTE_SKIPS"
NOT_APPLICABLE = "not applicable:"
_remote_skips: list[tuple[str, str]] = []


def pytest_addoption(parser):
    parser.addoption(
        "--runremote", action="store_true", default=False, help="run tests that need real queues"
    )
    parser.addoption("--runslow", action="store_true", default=False, help="run slow tests")


def pytest_collection_modifyitems(config, items):
    skips = {
        "remote": (config.getoption("--runremote"), "needs --runremote"),
        "slow": (config.getoption("--runslow"), "needs --runslow"),
    }
    for item in items:
        for marker, (enabled, reason) in skips.items():
            if marker in item.keywords and not enabled:
                item.add_marker(pytest.mark.skip(reason=reason))
    # Longest first: with parallel workers (pytest-xdist) a slow or queue-bound test started
    # last would leave the other workers idle at the end. The sort is stable, so tests keep
    # their file order within each class.
    items.sort(key=_start_rank)


# Files whose tests take a minute or more on a busy machine (queued jobs on the local queue,
# fits, whole workflows in subprocesses) without being marked slow or remote.
_LONG_FILES = (
    "tests/examples/test_main_job.py",
    "tests/test_readme.py",
    "tests/wfl/fit/",
    "tests/wfl/test_failure_categories.py",
    "tests/wfl/test_optimize.py",
    "tests/wfl/test_plan.py",
    "tests/wfl/test_power_cut.py",
    "tests/wfl/test_remote_autopara.py",
    "tests/wfl/test_remote_packed.py",
    "tests/wfl/test_remote_restart.py",
    "tests/wfl/test_remote_stale.py",
    "tests/wfl/test_two_drivers.py",
)


def _start_rank(item) -> int:
    """0 for slow tests, 1 for tests on live queues or known to be long, 2 for the rest."""
    if "slow" in item.keywords:
        return 0
    path = item.nodeid.split("::", 1)[0]
    if "remote" in item.keywords or path.startswith(_LONG_FILES):
        return 1
    return 2


@pytest.fixture(autouse=True)
def _private_local_queue_cores(tmp_path_factory, monkeypatch):
    """Give each test its own core locks for the local queue.

    The local queue's core locks are machine-wide per user (so two projects share the
    cores); a test must neither wait for jobs a developer runs meanwhile nor for a job an
    earlier failed test left running. Tests of the sharing itself set the variable again.
    """
    monkeypatch.setenv("EXPYRE_LOCAL_CORES_DIR", str(tmp_path_factory.mktemp("cores")))


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def pytest_runtest_logreport(report):
    if report.skipped and "remote" in report.keywords:
        reason = _skip_reason(report)
        if not reason.startswith(NOT_APPLICABLE):
            _remote_skips.append((report.nodeid, reason))


def pytest_sessionfinish(session, exitstatus):
    if os.environ.get(FAIL_ON_REMOTE_SKIPS_ENV) != "1" or not _remote_skips:
        return
    lines = "\n".join(f"  {nodeid}: {reason}" for nodeid, reason in _remote_skips)
    sys.stderr.write(
        f"\n{len(_remote_skips)} test(s) marked remote were SKIPPED although "
        f"{FAIL_ON_REMOTE_SKIPS_ENV}=1 (every system is configured here), so the run fails:\n"
        f"{lines}\nstart the missing daemons/tools (ci/start-*.sh, ci/install-*.sh), or make "
        f"a skip that is by design say '{NOT_APPLICABLE} ...'\n"
    )
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
