"""deploy/: the gunicorn config imports and names the real app; every systemd unit runs a
command that exists (an `e-rescue` subcommand, or gunicorn with that config)."""

from __future__ import annotations

import configparser
import os
import runpy
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from server.cli import main as cli

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))


def test_the_gunicorn_config_imports_and_names_the_app_factory(monkeypatch) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    settings = runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))
    module, _, call = settings["wsgi_app"].partition(":")
    assert (module, call) == ("server", "create_app()")
    import server

    assert callable(server.create_app)
    assert settings["worker_class"] == "sync" and settings["workers"] >= 2
    assert settings["bind"].startswith("127.0.0.1:")  # behind the proxy, never public itself
    assert callable(settings["child_exit"]) and callable(settings["on_starting"])


def test_a_gunicorn_worker_takes_its_start_up_heap_out_of_the_collectors_walks() -> None:
    """Full collections walked the whole start-up heap (137 ms, the console's p99); the hook
    freezes it once the app is loaded. Run apart: freezing would hold this test process's heap."""
    script = (
        "import gc, runpy; import server; "
        f"s = runpy.run_path({str(DEPLOY / 'gunicorn.conf.py')!r}); "
        "assert gc.get_freeze_count() == 0; s['post_worker_init'](None); "
        "print(gc.get_freeze_count())"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": ""}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    )
    assert int(out.stdout) > 50_000  # the modules alone; a loaded app adds ~300,000


def _exec_lines(unit: Path) -> list[list[str]]:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    text = unit.read_text()
    commands = [
        shlex.split(line.split("=", 1)[1])
        for line in text.splitlines()
        if line.startswith(("ExecStart=", "ExecStartPre="))
    ]
    parser.read_string(text)
    assert parser.has_section("Service"), unit.name
    return commands


def test_there_are_units_for_the_app_the_workers_and_the_metrics() -> None:
    """The schedule is the worker's own (server/worker/schedule.py): no timer unit repeats it."""
    names = {u.name for u in UNITS}
    assert {"e-rescue-app.service", "e-rescue-worker@.service", "e-rescue-metrics.service"} <= names
    assert not list((DEPLOY / "systemd").glob("*.timer"))


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_each_unit_runs_a_real_command(unit: Path) -> None:
    for argv in _exec_lines(unit):
        program = Path(argv[0]).name
        if program == "gunicorn":
            config = argv[argv.index("-c") + 1]
            assert Path(config).name == "gunicorn.conf.py"
            assert (DEPLOY / "gunicorn.conf.py").exists()
            continue
        assert program == "e-rescue", argv
        group, words = cli, argv[1:]
        while words and hasattr(group, "commands") and not words[0].startswith("-"):
            assert words[0] in group.commands, f"{unit.name}: no command {' '.join(argv[1:])}"
            group, words = group.commands[words[0]], words[1:]
        params = {opt for p in group.params for opt in getattr(p, "opts", [])}
        for word in words:
            if word.startswith("--"):
                assert word in params, f"{unit.name}: {word} is not an option of {group.name}"
