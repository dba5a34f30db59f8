"""What every command shares: the repository root and the runtime built from the environment."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from server.config import Config

if TYPE_CHECKING:
    from server.runtime import Runtime

ROOT = Path(__file__).resolve().parent.parent.parent


def runtime() -> Runtime:
    """The runtime for one command, from the environment (imported late: importing does nothing)."""
    from server.runtime import Runtime

    return Runtime.build(Config.from_env())


def redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
