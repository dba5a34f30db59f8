"""The OpenAPI document the app serves, written to a file or compared with one.

A refactor that must not change the API (issue #16, the house by domain) proves it with:

    python -m tests.openapi_snapshot dump before.json    # on the old tree
    python -m tests.openapi_snapshot diff before.json    # on the new tree: prints nothing, exits 0
"""

from __future__ import annotations

import difflib
import json
import sys
import tempfile
from pathlib import Path

from server import create_app
from server.config import Config


def document() -> str:
    """The served `/api/openapi.json`, with sorted keys so equal documents are equal text."""
    with tempfile.TemporaryDirectory() as tmp:
        config = Config(
            env="test",
            database_url=f"sqlite:///{tmp}/openapi.db",
            upload_dir=tmp,
            log_level="WARNING",
        )
        app = create_app(config)
        try:
            spec = app.test_client().get("/api/openapi.json").get_json()
        finally:
            app.extensions["e_rescue"].dispose()
    return json.dumps(_canonical(spec), ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def _canonical(value: object) -> object:
    """Enums sorted: some are built from sets, whose order changes with the hash seed."""
    if isinstance(value, dict):
        return {
            key: sorted(item, key=str) if key == "enum" else _canonical(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_canonical(item) for item in value]
    return value


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in {"dump", "diff"}:
        print("usage: python -m tests.openapi_snapshot dump|diff FILE", file=sys.stderr)
        return 2
    command, path = argv
    current = document()
    if command == "dump":
        Path(path).write_text(current, encoding="utf-8")
        return 0
    before = Path(path).read_text(encoding="utf-8")
    diff = list(
        difflib.unified_diff(
            before.splitlines(keepends=True), current.splitlines(keepends=True), path, "current"
        )
    )
    sys.stdout.writelines(diff)
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
