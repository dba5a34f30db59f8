"""Reference data and records: staff accounts, villages, holidays, the working calendar,
deadlines, households, the demo data, department files."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import click

from server import clock
from server.cli.common import runtime
from server.config import Config
from server.db import unit_of_work

# --- accounts and reference data --------------------------------------------------------------


@click.command("create-staff")
@click.option("--username", required=True)
@click.option("--password", required=True)
@click.option(
    "--role",
    required=True,
    type=click.Choice(
        [
            "town_staff",
            "department_staff",
            "center_staff",
            "leader",
            "system_admin",
            "security_admin",
            "audit_admin",
        ]
    ),
)
@click.option("--town", "town_code", default=None, help="town code, for town_staff")
@click.option("--department", "department_code", default=None, help="for department_staff")
@click.option("--name", "display_name", default=None)
def create_staff_cmd(
    username: str,
    password: str,
    role: str,
    town_code: str | None,
    department_code: str | None,
    display_name: str | None,
) -> None:
    """Create a staff account."""
    from server.errors import DomainError
    from server.models import Role
    from server.services.accounts.staff import create_staff
    from server.services.kernel.access import SYSTEM

    rt = runtime()
    try:
        with unit_of_work(rt.session_factory) as db:
            user = create_staff(
                db,
                username=username,
                password=password,
                role=Role(role),
                town_code=town_code,
                department_code=department_code,
                display_name=display_name,
                now=clock.now(),
                actor=SYSTEM,
            )
            click.echo(f"created {user.role.value} {user.username} (id {user.id})")
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc


@click.command("load-villages")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def load_villages_cmd(file: Path) -> None:
    """Load villages from a CSV/xlsx file with columns 镇街, 村居, 编码."""
    from server.errors import DomainError
    from server.services.places.areas import load_villages

    rt = runtime()
    try:
        with unit_of_work(rt.session_factory) as db:
            result = load_villages(db, content=file.read_bytes(), filename=file.name)
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(
        f"villages: {result.created} created, {result.updated} updated, "
        f"{len(result.errors)} rejected"
    )
    for err in result.errors:
        click.echo(f"  row {err['row']} {err['column']}: {err['message']}")


@click.command("load-holidays")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--source", default=None, help="e.g. 国办发明电〔2026〕X号 (default: file name)")
def load_holidays_cmd(file: Path, source: str | None) -> None:
    """Load a holiday table (日期, 类型, 名称); each year in FILE replaces that year."""
    from server.errors import DomainError
    from server.services.calendar.holidays import load_holidays
    from server.services.kernel.access import SYSTEM

    rt = runtime()
    try:
        with unit_of_work(rt.session_factory) as db:
            result = load_holidays(
                db,
                content=file.read_bytes(),
                filename=file.name,
                source=source,
                actor=SYSTEM,
                now=clock.now(),
            )
    except DomainError as exc:
        for err in exc.errors.get("rows", []):
            click.echo(f"  row {err['row']} {err['column']}: {err['message']}", err=True)
        raise click.ClickException(exc.message) from exc
    for y in result.years:
        replaced = f" (replaced {y.replaced})" if y.replaced else ""
        click.echo(f"{y.year}: {y.holidays} holidays, {y.workdays} make-up workdays{replaced}")


@click.command("check-calendar")
@click.option(
    "--on",
    "on_day",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="check as of this day (YYYY-MM-DD) instead of today",
)
def check_calendar_cmd(on_day: datetime | None) -> None:
    """Exit 1 when next year's holidays are neither known nor awaited before their deadline."""
    from server.services.calendar.holidays import coverage

    rt = runtime()
    with unit_of_work(rt.session_factory) as db:
        info = coverage(db, today=on_day.date() if on_day else clock.today())
    for key in ("this_year", "next_year"):
        click.echo(f"{info[key]['year']}: {info[key]['status']} — {info[key]['message']}")
    if info["this_year"]["status"] == "missing" or info["next_year"]["status"] == "missing":
        sys.exit(1)


@click.command("check-deadlines")
def check_deadlines_cmd() -> None:
    """Remind, mark overdue and escalate transfer slips now; record supervision notices
    (idempotent). The worker also runs it every day (server/worker/schedule.py)."""
    from server.services.calendar.workdays import WorkCalendar
    from server.services.dispatches.supervision import check_deadlines

    rt = runtime()
    with unit_of_work(rt.session_factory) as db:
        result = check_deadlines(db, WorkCalendar.load(db), clock.now())
    for key, value in result.as_dict().items():
        click.echo(f"{key}: {value}")


@click.command("build-households")
def build_households_cmd() -> None:
    """Build households (户) from every application, visit and roster entry so far (safe to
    repeat: people already in a household stay where they are)."""
    from server.services.households.building import rebuild

    rt = runtime()
    with unit_of_work(rt.session_factory) as db:
        counts = rebuild(db, pii=rt.pii, now=clock.now())
    click.echo(f"households: {counts['households']}, current members: {counts['members']}")


@click.command("seed-demo")
def seed_demo_cmd() -> None:
    """Fill an empty database with clearly synthetic demo data and print the demo logins."""
    from server.demo import DemoRefused, refuse_in_production
    from server.demo.seed import DEMO_PASSWORD, DEMO_STAFF, seed_demo
    from server.runtime import Runtime
    from server.wechat.fake_state import fake_openid

    config = Config.from_env()
    try:
        refuse_in_production(config)
    except DemoRefused as exc:
        raise click.ClickException(str(exc)) from exc
    rt = Runtime.build(config)
    with unit_of_work(rt.session_factory) as db:
        logins = seed_demo(
            db,
            pii=rt.pii,
            now=clock.now(),
            storage=rt.storage,
            openid_for=fake_openid,
        )
    if not logins:
        click.echo("demo data already present; nothing added")
        logins = [(name, DEMO_PASSWORD, role.value) for name, role, _t, _d in DEMO_STAFF]
    click.echo("demo logins (synthetic data, for local use only; API and staff console):")
    for username, password, role in logins:
        click.echo(f"  {role:<18} {username:<16} {password}")


@click.command("import-feed")
@click.argument("code")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_feed_cmd(code: str, file: Path) -> None:
    """Import a department file (xlsx/csv) into feed CODE, committing chunk by chunk."""
    from server.errors import DomainError
    from server.services.feeds.batches import fill_name_keys, import_file
    from server.services.kernel.access import SYSTEM

    rt = runtime()
    db = rt.session_factory()
    bar = click.progressbar(length=1, label=f"{code} ← {file.name}", show_pos=True)

    def checkpoint(batch) -> None:  # noqa: ANN001
        db.commit()
        bar.length = max(batch.rows_total or 1, batch.rows_done, 1)
        bar.update(batch.rows_done - bar.pos)

    try:
        with bar:
            batch = import_file(
                db, code, file, pii=rt.pii, actor=SYSTEM, now=clock.now(), checkpoint=checkpoint
            )
            db.commit()
        fill_name_keys(db, checkpoint=db.commit)
    except DomainError as exc:
        db.rollback()
        raise click.ClickException(exc.message) from exc
    finally:
        db.close()
    r = batch.result
    click.echo(
        f"batch {batch.id}: read {r['read']}, accepted {r['accepted']}, rejected {r['rejected']}, "
        f"below threshold {r['below_threshold']}, leads created {r['leads_created']}, "
        f"updated {r['leads_updated']}, already covered {r['already_covered']}, "
        f"duplicates {r['duplicates']}, roster +{r['roster_added']}/~{r['roster_updated']}"
    )


@click.command("purge-feed-files")
def purge_feed_files_cmd() -> None:
    """Delete what department files left behind: stored files of ended batches, stored files no
    batch names, rejected rows 30 days after their batch (safe to run at any time)."""
    from server.services.feeds.batches import purge_files

    rt = runtime()
    with unit_of_work(rt.session_factory) as db:
        done = purge_files(db, storage=rt.storage, now=clock.now())
    click.echo(
        f"files of ended batches: {done['files']}, orphaned files: {done['orphans']}, "
        f"rejected rows past retention: {done['rejected_rows']}"
    )
