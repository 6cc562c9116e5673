"""A queued job imports only what it runs: the chunk runner, not ConfigSet or ase.io.

Every queued job is a fresh Python, so each module it imports costs every job; ase.io alone
is most of a job's start-up.
"""

import subprocess
import sys

PROBE = """
import sys
import wfl.autoparallelize.in_job, wfl.autoparallelize.pool, expyre.partial
heavy = [m for m in ("wfl.configset", "ase.io", "wfl.autoparallelize.base") if m in sys.modules]
print(",".join(heavy))
"""


def test_the_chunk_runner_does_not_import_configset_or_ase_io():
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == ""


def test_the_public_names_still_load_on_first_use():
    from wfl.autoparallelize import AutoparaInfo, RemoteInfo, autoparallelize

    assert callable(autoparallelize) and AutoparaInfo.__name__ == "AutoparaInfo"
    assert RemoteInfo.__name__ == "RemoteInfo"
