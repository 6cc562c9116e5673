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
from expyre_testutil import chatty, die_first_time

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


@pytest.fixture
def resubmitted_page(project, tmp_path):
    """A report of a job killed on its first run and resubmitted with twice the time (as a
    failure policy would), then succeeding; and one killed twice, left died."""
    jobs = {}
    for name in ("lucky", "doomed"):
        marker = tmp_path / f"{name}.marker"
        job = ExPyRe(name, function=die_first_time, args=[str(marker), 7]).start(
            ONE_CORE, partial_node=True
        )
        with pytest.raises(RemoteJobError):
            job.get_results(timeout=300)
        assert job.refresh().status == "died"
        if name == "doomed":
            marker.unlink()  # it dies again
        job.resubmit("died; resubmitting with max_time 00:10:00 -> 00:20:00",
                     {"num_cores": 1, "max_time": "20m"}, partial_node=True)  # fmt: skip
        jobs[name] = job
    assert jobs["lucky"].get_results(timeout=300)[0] == 7
    with pytest.raises(RemoteJobError):
        jobs["doomed"].get_results(timeout=300)
    page = tmp_path / "retried.html"
    result = CliRunner().invoke(cli, ["report", "-o", str(page)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return page, jobs


def _attempt_rows(dom, section, job_id):
    table = re.search(
        rf'<table class="attempts" data-job-id="{job_id}">(.*?)</table>', section, re.S
    ).group(1)
    return [
        re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        for row in re.findall(r"<tr data-submission[^>]*>(.*?)</tr>", table, re.S)
    ]


def test_report_shows_every_attempt_in_headless_chromium(resubmitted_page, tmp_path):
    page, jobs = resubmitted_page
    dom = _browse(page, tmp_path, "--dump-dom").stdout
    attempts = dom.split('id="attempts"')[1].split('id="timeline"')[0]
    assert attempts.count('class="attempts-of"') == 2
    for name, final in (("lucky", "succeeded"), ("doomed", "died")):
        first, second = _attempt_rows(dom, attempts, jobs[name].id)
        # number, system, queue id, request, submitted, queued, ran, outcome, then
        assert first[0] == "1" and second[0] == "2"
        assert first[1] == second[1] == "local" and first[2] != second[2] != "-"
        assert first[3] == "local: 1 node, 1 core, 00:10:00"
        assert second[3] == "local: 1 node, 1 core, 00:20:00"
        assert first[7].startswith("died") and second[7].startswith(final)
        assert second[7].endswith("(current)")
        assert first[8] == "died; resubmitting with max_time 00:10:00 -&gt; 00:20:00"
        assert second[8] == "-"
        assert re.match(r"\d{4}-\d\d-\d\d ", first[4]) and re.match(r"\d{4}-\d\d-\d\d ", second[4])
    # the failure of the job that died twice carries its attempts too
    failures = dom.split('id="failures"')[1].split('id="attempts"')[0]
    assert failures.count('class="failure"') == 1
    assert len(_attempt_rows(dom, failures, jobs["doomed"].id)) == 2
    # the timeline draws both submissions of each job on its row, each queued then ran
    timeline = dom.split('id="timeline"')[1]
    for job in jobs.values():
        for bar in ("1:queued", "1:ran", "2:queued", "2:ran"):
            assert f'id="{job.id}:{bar}"' in timeline, (job.id, bar)
    # the jobs table counts the tries
    row = re.search(rf'<tr data-job-id="{jobs["lucky"].id}"[^>]*>(.*?)</tr>', dom, re.S).group(1)
    assert re.findall(r"<td[^>]*>(.*?)</td>", row)[8] == "2"

    shot = tmp_path / "retried.png"
    _browse(page, tmp_path, f"--screenshot={shot}", "--window-size=1280,1400")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_show_lists_every_submission(resubmitted_page):
    _, jobs = resubmitted_page
    out = CliRunner().invoke(cli, ["show", jobs["doomed"].id], catch_exceptions=False).output
    section = out.split("submissions (request, times, outcome, what was decided next):")[1]
    section = section.split("state history:")[0]
    assert "#1  local " in section and "#2  local " in section
    assert "local: 1 node, 1 core, 00:10:00" in section
    assert "local: 1 node, 1 core, 00:20:00  (current)" in section
    assert "then: died; resubmitting with max_time 00:10:00 -> 00:20:00" in section
    assert section.count("-> died") == 2

    # a reset by the user keeps the submission it ends
    lucky = jobs["lucky"].id
    result = CliRunner().invoke(cli, ["reset_status", "-i", lucky, "-y"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = CliRunner().invoke(cli, ["show", lucky], catch_exceptions=False).output
    section = out.split("state history:")[0]
    assert "#1  local " in section and "#2  local " in section
    assert "-> succeeded" in section and "then: reset by the user" in section
    assert "(current)" not in section  # created again: no submission is current
