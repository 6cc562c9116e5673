"""Project scope, layering of config.json files, and every config error."""

import json
import os
import shlex
import sys

import pytest

from expyre.config import ConfigError, find_root, load_config


def _write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)


SLURM = {
    "host": "user@cluster",
    "scheduler": "slurm",
    "partitions": {"std": {"num_cores": 32, "max_time": "48h", "max_mem": "180GB"}},
}


@pytest.fixture
def scope(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".expyre").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("EXPYRE_ROOT", raising=False)
    monkeypatch.delenv("EXPYRE_SYS", raising=False)
    monkeypatch.delenv("EXPYRE_RSH", raising=False)
    return tmp_path


def test_builtin_local_system_without_any_config(scope, monkeypatch):
    monkeypatch.chdir(scope)
    cfg = load_config()
    assert cfg.root == scope / "home" / ".expyre"
    local = cfg.system()
    assert local.name == "local" and local.host is None and local.scheduler == "local"
    assert local.partitions["local"].num_cores == os.cpu_count()
    assert local.partitions["local"].max_time_s is None
    assert local.python_cmd == shlex.quote(sys.executable)


def test_nearest_expyre_dir_upwards_and_env_root(scope, monkeypatch):
    project = scope / "proj"
    deep = project / "a" / "b"
    deep.mkdir(parents=True)
    (project / "_expyre").mkdir()
    monkeypatch.chdir(deep)
    assert find_root() == project / "_expyre"
    monkeypatch.setenv("EXPYRE_ROOT", str(scope / "elsewhere"))
    assert find_root() == scope / "elsewhere"


def test_project_config_layers_over_home(scope, monkeypatch):
    _write(
        scope / "home/.expyre/config.json",
        {"systems": {"cluster": SLURM, "other": {**SLURM, "scheduler": "sge"}}},
    )
    override = {**SLURM, "partitions": {"big": {"num_cores": 64}}}
    _write(
        scope / "proj/_expyre/config.json",
        {"systems": {"cluster": override}, "default_system": "cluster"},
    )
    monkeypatch.chdir(scope / "proj")
    cfg = load_config()
    assert set(cfg.systems) == {"cluster", "other", "local"}
    assert list(cfg.systems["cluster"].partitions) == ["big"]  # whole system from the project
    assert cfg.systems["other"].scheduler == "sge"
    assert cfg.system().name == "cluster"
    c = cfg.systems["other"]
    assert c.python_cmd == "python3" and c.remsh_cmd == "ssh"
    assert c.partitions["std"].max_time_s == 48 * 3600
    assert c.partitions["std"].max_mem_kB == 180 * 1024**2


def test_default_system_choice(scope, monkeypatch):
    monkeypatch.chdir(scope)
    _write(scope / "home/.expyre/config.json", {"systems": {"a": SLURM, "b": SLURM}})
    with pytest.raises(ConfigError, match="EXPYRE_SYS"):
        load_config().system()
    monkeypatch.setenv("EXPYRE_SYS", "b")
    assert load_config().system().name == "b"
    monkeypatch.setenv("EXPYRE_SYS", "nope")
    with pytest.raises(ConfigError, match="'nope'"):
        load_config()
    monkeypatch.delenv("EXPYRE_SYS")
    _write(scope / "home/.expyre/config.json", {"systems": {"a": SLURM}})
    assert load_config().system().name == "a"  # the single user system wins over built-in local
    assert load_config().system("local").scheduler == "local"


def test_expyre_rsh_sets_default_remote_shell(scope, monkeypatch):
    monkeypatch.chdir(scope)
    monkeypatch.setenv("EXPYRE_RSH", "ssh -p 2222")
    _write(scope / "home/.expyre/config.json", {"systems": {"a": SLURM}})
    assert load_config().systems["a"].remsh_cmd == "ssh -p 2222"


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ("{not json", "not valid JSON"),
        ([1, 2], "JSON object"),
        ({"sytems": {}}, r"unknown top-level key.*sytems"),
        ({"systems": {"s": {**SLURM, "hots": "x"}}}, r"system 's': unknown key 'hots'"),
        ({"systems": {"s": {**SLURM, "scheduler": "condor"}}}, r"system 's'.*'scheduler'.*condor"),
        (
            {"systems": {"s": {k: v for k, v in SLURM.items() if k != "scheduler"}}},
            r"system 's'.*'scheduler' is missing",
        ),
        (
            {"systems": {"s": {**SLURM, "partitions": {"p": {"max_time": "1h"}}}}},
            r"partition 'p'.*'num_cores'.*missing",
        ),
        (
            {"systems": {"s": {**SLURM, "partitions": {"p": {"num_cores": "8"}}}}},
            r"partition 'p'.*positive integer",
        ),
        (
            {
                "systems": {
                    "s": {**SLURM, "partitions": {"p": {"num_cores": 8, "max_time": "soon"}}}
                }
            },
            r"partition 'p'.*max_time",
        ),
        (
            {"systems": {"s": {**SLURM, "partitions": {"p": {"num_cores": 8, "max_mem": "big"}}}}},
            r"partition 'p'.*max_mem",
        ),
        (
            {"systems": {"s": {**SLURM, "partitions": {"p": {"num_cores": 8, "gpus": 1}}}}},
            r"partition 'p'.*unknown key.*gpus",
        ),
        (
            {"systems": {"s": {**SLURM, "partitions": {}}}},
            r"system 's'.*'partitions' is missing or empty",
        ),
        (
            {"systems": {"s": {**SLURM, "header": "#SBATCH -A x"}}},
            r"system 's'.*'header'.*wrong type",
        ),
        (
            {"systems": {"s": {**SLURM, "commands": [1]}}},
            r"system 's'.*'commands'.*list of strings",
        ),
        (
            {"systems": {"s": {**SLURM, "queues": {"q": {"num_cores": 1}}}}},
            r"'partitions' or 'queues', not both",
        ),
        ({"systems": {"s": 5}}, r"system 's': must be an object"),
        ({"systems": []}, r"'systems' must be an object"),
    ],
)
def test_config_errors_name_file_system_and_key(scope, monkeypatch, data, match):
    monkeypatch.chdir(scope)
    path = scope / "home/.expyre/config.json"
    _write(path, data)
    with pytest.raises(ConfigError, match=match) as info:
        load_config()
    assert str(path) in str(info.value)


def test_queues_is_a_synonym_of_partitions(scope, monkeypatch):
    monkeypatch.chdir(scope)
    sge = {"scheduler": "sge", "queues": {"all.q": {"num_cores": 16}}}
    _write(scope / "home/.expyre/config.json", {"systems": {"g": sge}})
    assert load_config().systems["g"].partitions["all.q"].num_cores == 16


@pytest.mark.parametrize(
    "extra,words",
    [
        ({"host": ""}, ["'host'", "is empty", "use null for this machine"]),
        ({"host": "  "}, ["'host'", "is empty"]),
        ({"python_cmd": ""}, ["'python_cmd'", "is empty", "remove the key"]),
        ({"rundir": ""}, ["'rundir'", "is empty"]),
        ({"rundir": "~bob/runs"}, ["'rundir'", "'~bob/runs'", "'~/runs'"]),
        ({"header": ["#SBATCH --x={num_core}"]}, ["header line", "num_core", "num_cores"]),
        ({"remsh_cmd": "ssh -o 'Opt"}, ["'remsh_cmd'", "not a command", "ssh -p 2222"]),
    ],
)
def test_config_values_that_would_be_silently_replaced_are_errors(tmp_path, extra, words):
    """An empty host made a cluster system run on this machine; an empty python_cmd or
    rundir fell back to a default; a bad header field failed only at the first submission."""
    path = tmp_path / "config.json"
    system = {"scheduler": "slurm", "partitions": {"p": {"num_cores": 2}}, **extra}
    path.write_text(json.dumps({"systems": {"s": system}}))
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    message = str(info.value)
    assert str(path) in message and "system 's'" in message
    for word in words:
        assert word in message


def test_rundir_under_the_home_directory_is_expanded(tmp_path, monkeypatch):
    from expyre.system import get_system

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    system = {"host": None, "scheduler": "slurm", "rundir": "~/runs"}
    system["partitions"] = {"p": {"num_cores": 2}}
    (tmp_path / "config.json").write_text(json.dumps({"systems": {"s": system}}))
    assert get_system("s", load_config(tmp_path)).rundir == str(tmp_path / "home" / "runs")
