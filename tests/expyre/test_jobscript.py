"""Job script text: order of sections, quoting, header formatting errors."""

import dataclasses
import subprocess

import pytest

from expyre.jobscript import env_var_lines, job_script
from expyre.resources import Selection
from expyre.schedulers import get_scheduler
from expyre.schedulers.base import JobRequest

SEL = Selection(
    "p", num_nodes=2, num_cores=8, num_cores_per_node=4, max_time_s=3700, max_mem_kB=None
)
REQ = JobRequest("job_1", "p", 2, 8, 4, 3700, None, "/d/out", "/d/err")


def _script(**kw):
    args = dict(
        scheduler=get_scheduler("local", queue_dir="/q", python_cmd="python3"),
        request=REQ, selection=SEL, job_id="job_1", job_dir="/jobs/it's here", python_cmd="python3",
    )  # fmt: skip
    return job_script(**{**args, **kw})


def test_sections_in_order_and_values_exported():
    text = _script(
        system_header=[
            "#X --nodes={num_nodes} --ppn={num_cores_per_node} -t {max_time} {partition} {id}"
        ],
        header_extra=["#X --extra"],
        commands=["module load thing"],
        env_vars=["A=1"],
        pre_run_commands=["echo pre"],
        post_run_commands=["echo post"],
    )
    lines = text.splitlines()
    assert lines[0] == "#!/bin/bash"
    assert "#X --nodes=2 --ppn=4 -t 01:01:40 p job_1" in lines
    order = [
        "#LOCAL --job-name=job_1", "#X --nodes=2", "#X --extra", "cd '/jobs/it'\"'\"'s here' || exit 97",
        "export EXPYRE_NUM_NODES=2", "export EXPYRE_NUM_CORES=8", "export EXPYRE_NUM_CORES_PER_NODE=4",
        "export EXPYRE_NCORES_PER_NODE=4", "module load thing", "export A=\"1\"", "echo pre",
        "python3 -m expyre.runner '/jobs/it'\"'\"'s here'", "echo post", "exit $expyre_exit_code",
    ]  # fmt: skip
    positions = [next(i for i, line in enumerate(lines) if line.startswith(o)) for o in order]
    assert positions == sorted(positions)


def test_no_default_header():
    assert "#LOCAL" not in _script(no_default_header=True)


def test_bad_header_field_names_the_line():
    with pytest.raises(ValueError, match=r"header_extra line '#X \{nodes\}'.*num_nodes"):
        _script(header_extra=["#X {nodes}"])


def test_env_values_expand_at_run_time_and_copies_never_execute(tmp_path):
    lines = env_var_lines(
        ["N=${EXPYRE_NUM_CORES_PER_NODE}", "K='{ \"ncore\": '${EXPYRE_NCORES_PER_NODE}'}'", "EVIL"],
        environ={"EVIL": "$(touch pwned); `touch pwned2` 'q\""},
    )
    script = "\n".join(["export EXPYRE_NUM_CORES_PER_NODE=8 EXPYRE_NCORES_PER_NODE=8", *lines,
                        'printf "%s\\n" "$N" "$K" "$EVIL"'])  # fmt: skip
    out = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert out.stdout.splitlines() == ["8", '{ "ncore": 8}', "$(touch pwned); `touch pwned2` 'q\""]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("entry", "match"),
    [("1BAD=x", "not a valid variable name"), ("MISSING_VAR_XYZ", "not set in this process")],
)
def test_env_var_errors(entry, match):
    with pytest.raises(ValueError, match=match):
        env_var_lines([entry], environ={})


def test_env_values_with_spaces_quotes_and_braces_reach_the_job_intact(tmp_path):
    """The README's ``WFL_VASP_KWARGS={"ncore": ${EXPYRE_NCORES_PER_NODE}}`` and friends:
    the value arrives as written, with only the ``${...}`` expanded when the job runs."""
    values = {
        "KW": '{"ncore": ${EXPYRE_NCORES_PER_NODE}}',
        "SPACED": "mpirun -np ${EXPYRE_NUM_CORES} vasp_std  --flag",
        "QUOTES": 'it\'s "quoted" {braces} [x] a\\b `not run` ;|&<>',
        "EMPTY": "",
        "PREQUOTED": "'mpirun -np 4 vasp'",  # earlier versions: the user's own shell quoting
    }
    lines = env_var_lines([f"{k}={v}" for k, v in values.items()], environ={})
    printed = " ".join(f'"${k}"' for k in values)
    script = "\n".join(
        [
            "export EXPYRE_NCORES_PER_NODE=16 EXPYRE_NUM_CORES=32",
            *lines,
            f"printf '%s\\n' {printed}",
        ]
    )
    out = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert out.stdout.split("\n")[:-1] == [
        '{"ncore": 16}',
        "mpirun -np 32 vasp_std  --flag",
        'it\'s "quoted" {braces} [x] a\\b `not run` ;|&<>',
        "",
        "mpirun -np 4 vasp",
    ]
    assert out.stderr == ""
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("scheduler", "expected"),
    [("slurm", "2-00:00:05"), ("sge", "48:00:05"), ("pbs", "48:00:05"), ("local", "2-00:00:05")],
)
def test_max_time_field_uses_the_schedulers_own_format(scheduler, expected):
    """SGE's h_rt and PBS's walltime reject Slurm's D-HH:MM:SS, so {max_time} must follow
    the scheduler the header line is written for."""
    two_days = dataclasses.replace(SEL, max_time_s=2 * 86400 + 5)
    options = {"queue_dir": "/q", "python_cmd": "python3"} if scheduler == "local" else {}
    text = _script(
        scheduler=get_scheduler(scheduler, **options),
        selection=two_days,
        no_default_header=True,
        system_header=["#X -l h_rt={max_time}"],
    )
    assert f"#X -l h_rt={expected}" in text.splitlines()
