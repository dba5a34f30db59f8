"""Clearly synthetic demo data for `make run`, the benchmarks and the tests: people,
applications, casework and slips (`seed`), households and the social forces (`social`).

It is not a rule of the service, so it lives outside `server/services`, and it refuses a
production configuration (`refuse_in_production`): demo logins share one published password.
"""

from __future__ import annotations

from server.config import Config


class DemoRefused(RuntimeError):
    """Demo data was asked for where it must never go."""


def refuse_in_production(config: Config) -> None:
    """Raise `DemoRefused` when APP_ENV=production, before anything touches the database."""
    if config.is_production:
        raise DemoRefused(
            "拒绝在生产环境写入演示数据 (APP_ENV=production): demo data and its shared demo "
            "password must never reach a live database"
        )
