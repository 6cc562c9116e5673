"""``xpr report``: the HTML page opened in a real headless Chromium (Debian's ``chromium``).

The page is rendered from real local-queue jobs, loaded by the browser with its script run
(``--dump-dom`` prints the DOM after load), and a screenshot is kept in the test's tmp dir.
"""

import re
import shutil
import subprocess
import time

import pytest
from click.testing import CliRunner
from expyre_testutil import chatty

from expyre.cli import cli
from expyre.func import ExPyRe, RemoteJobError
from expyre.system import get_system

ONE_CORE = {"num_cores": 1, "max_time": "10m"}
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",  # the test may run as root
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("chromium is not installed: run `bash ci/install-system-packages.sh`")
    return path


def _browse(page, tmp_path, *extra, fragment=""):
    profile = tmp_path / f"chromium-profile-{time.monotonic_ns()}"
    argv = [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra,
            f"file://{page}{fragment}"]  # fmt: skip
    return subprocess.run(argv, capture_output=True, text=True, timeout=180, check=True)


@pytest.fixture
def report_page(project, tmp_path):
    """A report of three finished jobs (one failed) and one running job."""
    good = [
        ExPyRe(f"good{i}", function=chatty, args=[3 + i]).start(ONE_CORE, partial_node=True)
        for i in range(2)
    ]
    bad = ExPyRe("bad", function=chatty, args=[2], kwargs={"fail": True}).start(
        ONE_CORE, partial_node=True
    )
    for job in good:
        job.get_results(timeout=300)
    with pytest.raises(RemoteJobError):
        bad.get_results(timeout=300)
    running = ExPyRe("slow", function=chatty, args=[1, 300]).start(ONE_CORE, partial_node=True)
    page = tmp_path / "jobs.html"
    try:
        result = CliRunner().invoke(cli, ["report", "-o", str(page)], catch_exceptions=False)
    finally:
        get_system("local").cancel([running.refresh().remote_id])
    assert result.exit_code == 0 and "4 jobs" in result.output, result.output
    return page, {"good": good, "bad": bad, "running": running}


def test_report_is_self_contained(report_page):
    page, _ = report_page
    text = page.read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text)  # nothing to fetch
    assert "<svg" in text and "<script>" in text and "<style>" in text


def test_report_in_headless_chromium(report_page, tmp_path):
    page, jobs = report_page
    dom = _browse(page, tmp_path, "--dump-dom", fragment="#sort=-name").stdout
    rows = re.findall(r'<tr data-job-id="([^"]+)" data-status="([^"]+)">', dom)
    assert len(rows) == 4
    # the page's script ran in the browser and sorted the table by name, descending
    assert 'data-sorted-by="name:desc"' in dom
    names = [jid.rsplit("_", 1)[0] for jid, _ in rows]
    assert names == ["slow", "good1", "good0", "bad"]
    assert dict(rows)[jobs["bad"].id] == "failed"
    # every failure with its reason and log tail
    failures = dom.split('id="failures"')[1].split('id="timeline"')[0]
    assert failures.count('class="failure"') == 1 and jobs["bad"].id in failures
    assert "RuntimeError('chatty failed after 2 lines')" in failures
    assert "a warning on stderr" in failures
    # the timeline: an inline SVG with one label per submitted job and drawn bars
    timeline = dom.split('id="timeline"')[1].split("<h2>")[0]
    assert "<svg" in timeline and timeline.count("<path") >= 4
    for name in ("good0", "good1", "bad", "slow"):
        assert f">{name}<" in timeline
    assert re.search(r'data-status="failed"><td><span class="badge"[^>]*>failed', dom)

    shot = tmp_path / "report.png"
    _browse(page, tmp_path, f"--screenshot={shot}", "--window-size=1280,1600")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
