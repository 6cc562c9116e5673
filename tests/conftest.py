"""Project-wide pytest options, with the names users' test instructions already use.

``--runremote`` enables tests marked ``remote`` (real queues / ssh hosts), ``--runslow``
enables tests marked ``slow``. ``--basetemp`` is pytest's own option and is honoured by
using ``tmp_path`` everywhere (queues may need job dirs on a shared filesystem).
"""

import pytest


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


@pytest.fixture(autouse=True)
def _private_local_queue_cores(tmp_path_factory, monkeypatch):
    """Give each test its own core locks for the local queue.

    The local queue's core locks are machine-wide per user (so two projects share the
    cores); a test must neither wait for jobs a developer runs meanwhile nor for a job an
    earlier failed test left running. Tests of the sharing itself set the variable again.
    """
    monkeypatch.setenv("EXPYRE_LOCAL_CORES_DIR", str(tmp_path_factory.mktemp("cores")))
