"""The `e-rescue` operator commands. Each command commits once at its end.

Modules: `database` (`db upgrade`), `data` (staff, villages, holidays, the calendar, deadlines,
households, the demo data, department files), `audit` (the audit trail, keys, backup, restore),
`processes` (the fake WeChat server, metrics, the worker, the API); `common` what they share.
Every command is added to `main` here, in one list.
"""

from __future__ import annotations

import logging

import click

from server.cli import audit, data, database, processes


@click.group()
def main() -> None:
    """博山e救助 backend commands."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


COMMANDS: tuple[click.Command, ...] = (
    database.db_group,
    data.create_staff_cmd,
    data.load_villages_cmd,
    audit.audit_group,
    audit.rotate_keys_cmd,
    data.load_holidays_cmd,
    data.check_calendar_cmd,
    data.check_deadlines_cmd,
    data.build_households_cmd,
    data.seed_demo_cmd,
    data.import_feed_cmd,
    audit.backup_cmd,
    audit.restore_cmd,
    data.purge_feed_files_cmd,
    processes.fake_wechat_cmd,
    processes.metrics_cmd,
    processes.worker_cmd,
    processes.serve_cmd,
)
for _command in COMMANDS:
    main.add_command(_command)
