"""deploy/: the gunicorn config imports and names the real app; every systemd unit runs a
command that exists (an `e-rescue` subcommand, or gunicorn with that config)."""

from __future__ import annotations

import configparser
import runpy
import shlex
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
