"""Say, before the suite runs, which databases it will use (`make test`)."""

from __future__ import annotations

import os
import sys

from tests.conftest import PG_URL, postgres_reachable


def main() -> int:
    if postgres_reachable():
        print("make test: running on SQLite and PostgreSQL")
        return 0
    if os.environ.get("REQUIRE_POSTGRES") == "1":
        print(f"make test: PostgreSQL required (REQUIRE_POSTGRES=1) but unreachable at {PG_URL}")
        return 1
    print("make test: PostgreSQL unreachable; running on SQLite only")
    return 0


if __name__ == "__main__":
    sys.exit(main())
