"""The house's one-way dependencies, checked on the source: api → services → models.

`server/wechat` is an adapter the services receive as an argument; nothing below the API imports
`server.api`; only `server/wechat` imports wechatpy; only `server/clock.py` reads the clock.
The worker, the CLI and the demo data call the services and nothing below imports them; each
service package says what it owns and is entered only by its public names; no module is over
600 lines.
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
                "server.worker",
                "server.cli",
                "server.demo",
                "flask",
                "wechatpy",
            ),
        ),
        (
            "services",
            (
                "server.api",
                "server.console",
                "server.wechat",
                "server.worker",
                "server.cli",
                "server.demo",
                "flask",
                "wechatpy",
            ),
        ),
        # The worker and the demo data call the services, like the API, and never the reverse.
        ("worker", ("server.api", "server.console", "server.cli", "server.demo", "flask")),
        ("demo", ("server.api", "server.console", "server.cli", "server.worker", "flask")),
        ("wechat", ("server.services", "server.api", "server.console", "flask_smorest")),
        # Storage is an adapter like the gateway: services receive it, it knows none of them.
        ("storage", ("server.services", "server.api", "server.console", "server.wechat", "flask")),
        # The console calls the services, as the API does: never the API, never a query.
        (
            "console",
            (
                "server.api",
                "server.wechat",
                "server.worker",
                "server.cli",
                "sqlalchemy",
                "wechatpy",
                "flask_smorest",
            ),
        ),
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


SERVICES = SERVER / "services"


def _service_package(path: Path) -> str | None:
    """`leads` for server/services/leads/queue.py; None for a module outside any package."""
    parts = path.relative_to(SERVICES).parts
    return parts[0] if len(parts) > 1 else None


def test_every_service_package_says_what_it_owns() -> None:
    """Each domain is a package whose `__init__.py` docstring names what it owns, and imports
    nothing: callers import the module that holds a name, so importing a package costs nothing
    and cannot hide a cycle."""
    offenders = []
    for init in sorted(SERVICES.glob("*/__init__.py")):
        tree = ast.parse(init.read_text(encoding="utf-8"))
        if not ast.get_docstring(tree):
            offenders.append(f"{init.relative_to(SERVER.parent)}: no docstring")
        if any(isinstance(node, (ast.Import, ast.ImportFrom)) for node in tree.body):
            offenders.append(f"{init.relative_to(SERVER.parent)}: imports")
    assert offenders == []


def test_the_kernel_stands_on_no_other_service_package() -> None:
    offenders = [
        f"{path.relative_to(SERVER.parent)} imports {name}"
        for path in _modules("services/kernel")
        for name in sorted(_imports(path))
        if name.startswith("server.services")
        and not name.startswith("server.services.kernel")
        and name != "server.services"
    ]
    assert offenders == []


def _private_uses(path: Path) -> list[tuple[str, str]]:
    """(module, name) for each underscore name this file takes from another module: imported
    (`from m import _x`) or read off an imported module (`m._x`)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    modules: dict[str, str] = {}
    uses = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                modules[alias.asname or alias.name] = f"{node.module}.{alias.name}"
                if alias.name.startswith("_"):
                    uses.append((node.module, alias.name))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    modules[alias.asname] = alias.name
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in modules
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            uses.append((modules[node.value.id], node.attr))
    return uses


def test_no_service_package_reaches_into_another_ones_private_names() -> None:
    """A package's private helpers are its own: another package (or the API, console, worker,
    CLI) uses only public names, so a package can change its insides without breaking others."""
    offenders = []
    for path in _modules(""):
        rel = path.relative_to(SERVER)
        own = _service_package(path) if rel.parts[0] == "services" else rel.parts[0]
        for module, name in _private_uses(path):
            if not module.startswith("server.services."):
                continue
            target = module.split(".")[2]
            if target != own:
                offenders.append(f"{path.relative_to(SERVER.parent)}: {module}.{name}")
    assert offenders == []


#: At most this many lines per module: past it a module holds two concerns.
MAX_LINES = 600


def test_no_module_in_the_server_is_over_600_lines() -> None:
    too_long = {
        str(path.relative_to(SERVER.parent)): n
        for path in _modules("")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert too_long == {}


def _exists(module: str, name: str | None) -> bool:
    """`module` can be imported and, with `name`, has it (an attribute or a submodule)."""
    import importlib
    import importlib.util

    try:
        if importlib.util.find_spec(module) is None:
            return False
    except ModuleNotFoundError:  # a parent package is missing
        return False
    if name is None or hasattr(importlib.import_module(module), name):
        return True
    return importlib.util.find_spec(f"{module}.{name}") is not None


def test_every_import_of_the_server_names_what_exists() -> None:
    """Imports inside functions run only when called: after a module moves, one left on the old
    path (in the server, the tests or the benchmarks) fails here rather than in one test."""
    root = SERVER.parent
    paths = [
        *SERVER.rglob("*.py"),
        *(root / "tests").rglob("*.py"),
        *(root / "bench").rglob("*.py"),
    ]
    missing = []
    for path in sorted(paths):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                wanted = [(node.module, alias.name) for alias in node.names]
            elif isinstance(node, ast.Import):
                wanted = [(alias.name, None) for alias in node.names]
            else:
                continue
            for module, name in wanted:
                if module.split(".")[0] == "server" and not _exists(module, name):
                    missing.append(f"{path.relative_to(root)}:{node.lineno} {module} {name or ''}")
    assert missing == []


TESTS = Path(__file__).resolve().parent


def _is_test_module(name: str) -> bool:
    parts = name.split(".")
    return parts[0] == "tests" and parts[-1].startswith("test_")


def _test_module_imports(path: Path) -> list[str]:
    """The `tests.test_*` modules this file imports, however it names them: `import tests.test_x`,
    `from tests.test_x import y`, `from tests import test_x`, or relatively (`from . import
    test_x`, `from .test_x import y`), at the top or inside a function."""
    package = ["tests", *path.parent.relative_to(TESTS).parts]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names if _is_test_module(alias.name)]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *(node.module or "").split(".")]).strip(".")
            modules = (
                [module]
                if _is_test_module(module)
                else [
                    f"{module}.{alias.name}"
                    for alias in node.names
                    if _is_test_module(f"{module}.{alias.name}")
                ]
            )
        else:
            continue
        found += [f"{path.relative_to(TESTS.parent)}:{node.lineno} imports {m}" for m in modules]
    return found


def test_no_test_module_imports_another_test_module() -> None:
    """Helpers and fixtures that several test modules share live in tests/builders/ (or
    tests/conftest.py), never in a test module: importing one drags its tests, fixtures and
    autouse fixtures into the importer. Checked on every file under tests/, builders included."""
    offenders = [
        found for path in sorted(TESTS.rglob("*.py")) for found in _test_module_imports(path)
    ]
    assert offenders == []
