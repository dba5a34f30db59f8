"""The house's one-way dependencies, checked on the source: api → services → models.

`server/wechat` is an adapter the services receive as an argument; nothing below the API imports
`server.api`; only `server/wechat` imports wechatpy; only `server/clock.py` reads the clock.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SERVER = Path(__file__).resolve().parent.parent / "server"


def _modules(package: str) -> list[Path]:
    root = SERVER / package if package else SERVER
    return sorted(root.rglob("*.py"))


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


#: The gateway's interface (its protocol, value types and error) is what services receive, so
#: they may type and catch it; the console turns SQLAlchemy's stale-version error into its 409.
ALLOWED = {"server.wechat.interface", "server.wechat.errors", "sqlalchemy.orm.exc"}
#: Where a forbidden import is the module's job: the console's request session and connection.
ALLOWED_IN = {"console/deps.py": ("sqlalchemy",)}


def _offenders(package: str, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{path.relative_to(SERVER.parent)} imports {name}"
        for path in _modules(package)
        for name in sorted(_imports(path))
        if name.startswith(forbidden)
        and name not in ALLOWED
        and not name.startswith(ALLOWED_IN.get(str(path.relative_to(SERVER)), ("-",)))
    ]


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        (
            "models",
            (
                "server.services",
                "server.api",
                "server.console",
                "server.wechat",
                "flask",
                "wechatpy",
            ),
        ),
        ("services", ("server.api", "server.console", "server.wechat", "flask", "wechatpy")),
        ("wechat", ("server.services", "server.api", "server.console", "flask_smorest")),
        # Storage is an adapter like the gateway: services receive it, it knows none of them.
        ("storage", ("server.services", "server.api", "server.console", "server.wechat", "flask")),
        # The console calls the services, as the API does: never the API, never a query.
        ("console", ("server.api", "server.wechat", "sqlalchemy", "wechatpy", "flask_smorest")),
    ],
)
def test_dependencies_run_one_way(package: str, forbidden: tuple[str, ...]) -> None:
    assert _offenders(package, forbidden) == []


def test_only_create_app_imports_the_api() -> None:
    offenders = [
        f"{path.relative_to(SERVER.parent)}"
        for path in _modules("")
        if "api" not in path.relative_to(SERVER).parts[:1]
        and path != SERVER / "__init__.py"
        and any(name.startswith("server.api") for name in _imports(path))
    ]
    assert offenders == []


def test_only_create_app_imports_the_console() -> None:
    offenders = [
        f"{path.relative_to(SERVER.parent)}"
        for path in _modules("")
        if "console" not in path.relative_to(SERVER).parts[:1]
        and path != SERVER / "__init__.py"
        and any(name.startswith("server.console") for name in _imports(path))
    ]
    assert offenders == []


def test_console_takes_only_enums_from_the_models() -> None:
    """The console reads records through services; from the models it may name only enums
    (roles, states) in its forms and labels."""
    import enum

    import server.models as models

    offenders = []
    for path in _modules("console"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("server.models"):
                for alias in node.names:
                    value = getattr(models, alias.name, None)
                    if not (isinstance(value, type) and issubclass(value, enum.Enum)):
                        offenders.append(f"{path.relative_to(SERVER.parent)}: {alias.name}")
    assert offenders == []


def test_only_the_wechat_adapter_imports_wechatpy() -> None:
    offenders = [
        f"{path.relative_to(SERVER.parent)}"
        for path in _modules("")
        if path.relative_to(SERVER).parts[0] != "wechat"
        and any(name.startswith("wechatpy") for name in _imports(path))
    ]
    assert offenders == []


def test_only_the_clock_module_reads_the_clock() -> None:
    readers = ("datetime.now(", "datetime.utcnow(", "date.today(", "time.time(")
    offenders = [
        f"{path.relative_to(SERVER.parent)}"
        for path in _modules("")
        if path != SERVER / "clock.py"
        and any(reader in path.read_text(encoding="utf-8") for reader in readers)
    ]
    assert offenders == []


def test_importing_the_services_loads_no_wechat_http_or_redis_client() -> None:
    """Services type the gateway with `server.wechat.interface`, which imports no third-party
    package; the wechatpy gateway is built by the runtime on first use. A clean interpreter
    imports every service module and must not have loaded wechatpy, requests or redis."""
    import subprocess
    import sys

    script = (
        "import importlib, pkgutil, sys\n"
        "import server.services as s\n"
        "for m in pkgutil.walk_packages(s.__path__, 'server.services.'):\n"
        "    importlib.import_module(m.name)\n"
        "print(','.join(sorted(n for n in ('wechatpy', 'requests', 'redis') if n in sys.modules)))"
    )
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == ""
