"""The `e-rescue` operator commands. Each command commits once at its end."""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from server import clock
from server.config import Config
from server.db import unit_of_work

ROOT = Path(__file__).resolve().parent.parent


def _runtime():  # noqa: ANN202
    from server.runtime import Runtime

    return Runtime.build(Config.from_env())


@click.group()
def main() -> None:
    """博山e救助 backend commands."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


# --- database ---------------------------------------------------------------------------------


@main.group("db")
def db_group() -> None:
    """Database migrations."""


def alembic_config(url: str):  # noqa: ANN201
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade_database(url: str) -> None:
    """Apply every migration, then seed the reference data (idempotent)."""
    from alembic import command

    from server.db import make_engine, make_session_factory
    from server.services.places.areas import seed_reference

    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), "head")
    engine = make_engine(url)
    with unit_of_work(make_session_factory(engine)) as db:
        seed_reference(db)
    engine.dispose()


@db_group.command("upgrade")
def db_upgrade() -> None:
    """Apply migrations and seed the reference data (towns, departments, public information)."""
    config = Config.from_env()
    upgrade_database(config.database_url)
    click.echo(f"database up to date: {_redact(config.database_url)}")


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


# --- accounts and reference data --------------------------------------------------------------


@main.command("create-staff")
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

    rt = _runtime()
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


@main.command("load-villages")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def load_villages_cmd(file: Path) -> None:
    """Load villages from a CSV/xlsx file with columns 镇街, 村居, 编码."""
    from server.errors import DomainError
    from server.services.places.areas import load_villages

    rt = _runtime()
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


# --- the audit trail --------------------------------------------------------------------------


@main.group("audit")
def audit_group() -> None:
    """The audit trail's chain: verify, export, prune."""


@audit_group.command("verify")
def audit_verify_cmd() -> None:
    """Check every kept entry against its keyed hash and the one before it; exit 1 on a break."""
    from server.services.kernel import audit_chain

    rt = _runtime()
    with rt.session_factory() as db:
        report = audit_chain.verify(db, key=rt.config.audit_chain_key_bytes)
    if report.unchained:
        click.echo(f"{report.unchained} entries from before the chain (not covered)")
    if not report.ok:
        click.echo(f"BROKEN at entry {report.broken_at}: {report.problem}", err=True)
        sys.exit(1)
    click.echo(
        f"audit chain intact: {report.checked} entries checked"
        + (f" (seq {report.first_seq}–{report.last_seq})" if report.checked else "")
    )


@audit_group.command("export")
@click.option("--after", "after_seq", type=int, default=0, help="only entries after this seq")
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="default: stdout"
)
@click.option("--syslog", is_flag=True, help="send each entry to AUDIT_SYSLOG_ADDRESS instead")
def audit_export_cmd(after_seq: int, out: Path | None, syslog: bool) -> None:
    """Entries as JSON lines, oldest first (run from cron with --after the last seq sent)."""
    from server.services.kernel import audit_chain

    rt = _runtime()
    emit, close = _audit_sink(rt.config.audit_syslog_address if syslog else None, out)
    sent = 0
    with rt.session_factory() as db:
        for line in audit_chain.export_lines(db, after_seq=after_seq):
            emit(line)
            sent += 1
    close()
    click.echo(f"exported {sent} entries", err=True)


def _audit_sink(syslog_address: str | None, out: Path | None):  # noqa: ANN202
    if syslog_address is not None:
        import logging.handlers

        if not syslog_address:
            raise click.ClickException("AUDIT_SYSLOG_ADDRESS is not set")
        host, sep, port = syslog_address.rpartition(":")
        address: Any = (host, int(port)) if sep and port.isdigit() else syslog_address
        handler = logging.handlers.SysLogHandler(
            address=address, facility=logging.handlers.SysLogHandler.LOG_AUTHPRIV
        )
        handler.ident = "e-rescue-audit: "
        log = logging.getLogger("e_rescue.audit_export")
        log.propagate = False
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        return log.info, handler.close
    if out is not None:
        stream = out.open("a", encoding="utf-8")
        return lambda line: stream.write(line + "\n"), stream.close
    return click.echo, lambda: None


@audit_group.command("prune")
@click.option("--days", type=int, default=None, help="keep this many days (default and least: "
              "AUDIT_RETENTION_DAYS, at least 180)")  # fmt: skip
def audit_prune_cmd(days: int | None) -> None:
    """Delete entries past retention, oldest first, a batch per transaction (safe to stop and
    run again); the chain still verifies afterwards."""
    from server.errors import DomainError
    from server.services.kernel import audit_chain

    rt = _runtime()
    keep = days if days is not None else rt.config.audit_retention_days
    total = 0
    try:
        while True:
            with unit_of_work(rt.session_factory) as db:
                gone = audit_chain.prune(
                    db, key=rt.config.audit_chain_key_bytes, now=clock.now(), keep_days=keep
                )
            total += gone
            if gone:
                click.echo(f"  pruned {total} so far")
            if not gone:
                break
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"pruned {total} entries older than {keep} days")


@main.command("rotate-keys")
@click.option("--batch", type=int, default=1000, show_default=True, help="values per transaction")
def rotate_keys_cmd(batch: int) -> None:
    """Re-seal every sealed value under the first key of FIELD_ENCRYPTION_KEY, in batches (safe
    to stop and run again). Keep every key listed until it ends, and the last one always."""
    from server.services.kernel import rotation

    rt = _runtime()
    with rt.session_factory() as db:
        left = rotation.left_to_rotate(db, rt.pii)
    click.echo(f"re-sealing under {rt.pii.cipher.current_kid}: {sum(left.values())} values")
    for column, done in rotation.rotate(rt.session_factory, rt.pii, batch=batch):
        click.echo(f"  {column}: {done} of {left.get(column, done)}")
    with rt.session_factory() as db:
        remaining = sum(rotation.left_to_rotate(db, rt.pii).values())
    click.echo(f"done; {remaining} values left under older keys")


@main.command("load-holidays")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--source", default=None, help="e.g. 国办发明电〔2026〕X号 (default: file name)")
def load_holidays_cmd(file: Path, source: str | None) -> None:
    """Load a holiday table (日期, 类型, 名称); each year in FILE replaces that year."""
    from server.errors import DomainError
    from server.services.calendar.holidays import load_holidays
    from server.services.kernel.access import SYSTEM

    rt = _runtime()
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


@main.command("check-calendar")
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

    rt = _runtime()
    with unit_of_work(rt.session_factory) as db:
        info = coverage(db, today=on_day.date() if on_day else clock.today())
    for key in ("this_year", "next_year"):
        click.echo(f"{info[key]['year']}: {info[key]['status']} — {info[key]['message']}")
    if info["this_year"]["status"] == "missing" or info["next_year"]["status"] == "missing":
        sys.exit(1)


@main.command("check-deadlines")
@click.option(
    "--schedule", is_flag=True, help="also queue the daily run for the worker (08:00 tomorrow)"
)
def check_deadlines_cmd(schedule: bool) -> None:
    """Remind, mark overdue and escalate transfer slips; record supervision notices (idempotent)."""
    from server.services.calendar.workdays import WorkCalendar
    from server.services.supervision import check_deadlines, schedule_daily_check

    rt = _runtime()
    with unit_of_work(rt.session_factory) as db:
        now = clock.now()
        result = check_deadlines(db, WorkCalendar.load(db), now)
        queued = schedule_daily_check(db, now=now) if schedule else False
    for key, value in result.as_dict().items():
        click.echo(f"{key}: {value}")
    if schedule:
        click.echo("daily check queued for the worker" if queued else "daily check already queued")


@main.command("build-households")
def build_households_cmd() -> None:
    """Build households (户) from every application, visit and roster entry so far (safe to
    repeat: people already in a household stay where they are)."""
    from server.services.households.members import rebuild

    rt = _runtime()
    with unit_of_work(rt.session_factory) as db:
        counts = rebuild(db, pii=rt.pii, now=clock.now())
    click.echo(f"households: {counts['households']}, current members: {counts['members']}")


@main.command("seed-demo")
def seed_demo_cmd() -> None:
    """Fill an empty database with clearly synthetic demo data and print the demo logins."""
    from server.demo.seed import DEMO_PASSWORD, DEMO_STAFF, seed_demo
    from server.wechat.fake_server import fake_openid

    rt = _runtime()
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


@main.command("import-feed")
@click.argument("code")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_feed_cmd(code: str, file: Path) -> None:
    """Import a department file (xlsx/csv) into feed CODE, committing chunk by chunk."""
    from server.errors import DomainError
    from server.services.feeds.batches import fill_name_keys, import_file
    from server.services.kernel.access import SYSTEM

    rt = _runtime()
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


@main.command("backup")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="default: e-rescue-<time>.tar in the working directory")  # fmt: skip
def backup_cmd(out: Path | None) -> None:
    """Back up the database (pg_dump, or SQLite's online backup) and every stored object into
    one tar file, while the app runs."""
    from server import backup

    rt = _runtime()
    now = clock.now()
    out = out or Path(f"e-rescue-{now:%Y%m%d-%H%M%S}.tar")
    try:
        manifest = backup.create(
            rt.engine, rt.config.database_url, rt.storage, out, now=now,
            progress=lambda step: click.echo(f"  {step}…"),
        )  # fmt: skip
    except backup.BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    rows = sum(manifest.tables.values())
    click.echo(
        f"backup {out}: {len(manifest.tables)} tables, {rows} rows, {manifest.objects} objects "
        f"(revision {manifest.revision})"
    )


@main.command("restore")
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="replace the database's contents without asking")
def restore_cmd(archive: Path, yes: bool) -> None:
    """Replace the database's contents and put the stored objects back from ARCHIVE (stop the
    app and the workers first); every table's row count is checked against the backup."""
    from server import backup

    rt = _runtime()
    try:
        manifest = backup.read_manifest(archive)
    except backup.BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    if not yes:
        click.confirm(
            f"Replace everything in {_redact(rt.config.database_url)} with the backup of "
            f"{manifest.created_at}?",
            abort=True,
        )
    try:
        backup.restore(
            rt.engine, rt.config.database_url, rt.storage, archive,
            progress=lambda step: click.echo(f"  {step}…"),
        )  # fmt: skip
    except backup.BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"restored {sum(manifest.tables.values())} rows in {len(manifest.tables)} tables and "
        f"{manifest.objects} objects (revision {manifest.revision}); row counts checked"
    )


@main.command("purge-feed-files")
def purge_feed_files_cmd() -> None:
    """Delete what department files left behind: stored files of ended batches, stored files no
    batch names, rejected rows 30 days after their batch (safe to run at any time)."""
    from server.services.feeds.batches import purge_files

    rt = _runtime()
    with unit_of_work(rt.session_factory) as db:
        done = purge_files(db, storage=rt.storage, now=clock.now())
    click.echo(
        f"files of ended batches: {done['files']}, orphaned files: {done['orphans']}, "
        f"rejected rows past retention: {done['rejected_rows']}"
    )


# --- processes --------------------------------------------------------------------------------


@main.command("fake-wechat")
@click.option("--port", default=5100, show_default=True)
def fake_wechat_cmd(port: int) -> None:
    """Run the fake WeChat API server on 127.0.0.1 (for local runs and tests)."""
    from server.wechat.fake_server import FakeWeChatServer

    server = FakeWeChatServer(port=port)
    server.start()
    click.echo(f"fake WeChat API at {server.url} (calls: {server.url}_fake/calls)")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


@main.command("metrics")
@click.option("--host", default="127.0.0.1", show_default=True, help="keep it private")
@click.option("--port", type=int, default=None, help="default: METRICS_PORT (9464)")
def metrics_cmd(host: str, port: int | None) -> None:
    """Serve Prometheus metrics on a private port: the counters of every app and worker process
    on this machine (PROMETHEUS_MULTIPROC_DIR) and gauges read from the database."""
    from server.metrics import serve

    rt = _runtime()
    port = port or rt.config.metrics_port
    serve(port, host=host, session_factory=rt.read_session_factory, clock=clock.now)
    click.echo(f"metrics: http://{host}:{port}/metrics")
    while True:
        time.sleep(3600)


@main.command("worker")
@click.option("--once", is_flag=True, help="run what is due, then exit (for cron and tests)")
@click.option("--interval", default=2.0, show_default=True, help="seconds between polls")
def worker_cmd(once: bool, interval: float) -> None:
    """Run background jobs recorded in the database."""
    rt = _runtime()
    ran = run_worker(rt, once=once, interval=interval)
    if once:
        click.echo(f"ran {ran} job(s) and message(s)")


def run_worker(
    rt, *, once: bool, interval: float = 2.0, stop: threading.Event | None = None
) -> int:  # noqa: ANN001
    from server.worker import jobs, outbox
    from server.worker.registry import load_job_handlers

    load_job_handlers()
    worker_id = f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
    total = 0
    while True:
        total += jobs.run_due(
            rt.session_factory, worker_id=worker_id, clock=clock.now, deps=rt.job_deps()
        )
        # WeChat messages: queued by state changes, sent here (see worker/outbox.py).
        total += outbox.deliver_due(
            rt.session_factory, rt.gateway, config=rt.config, clock=clock.now
        ).handled
        if once or (stop is not None and stop.is_set()):
            return total
        time.sleep(interval)


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=lambda: int(os.environ.get("PORT", "5000")), show_default="5000")
@click.option(
    "--dev",
    is_flag=True,
    help="also start the fake WeChat server and a worker in this process (make run)",
)
def serve_cmd(host: str, port: int, dev: bool) -> None:
    """Serve the API (development server; production uses gunicorn, see README)."""
    from server import create_app

    config = Config.from_env()
    if dev:
        _start_dev_companions(config)
    app = create_app(config)
    click.echo(f"API:  http://{host}:{port}/api/v1/   docs: http://{host}:{port}/api/docs")
    app.run(host=host, port=port, threaded=True, use_reloader=False)


def _start_dev_companions(config: Config) -> None:
    from urllib.parse import urlparse

    from server.runtime import Runtime
    from server.wechat.fake_server import FakeWeChatServer

    fake_port = urlparse(config.wechat_api_base).port or 5100
    FakeWeChatServer(port=fake_port).start()
    click.echo(f"fake WeChat API: {config.wechat_api_base}")
    rt = Runtime.build(config)
    threading.Thread(
        target=run_worker, args=(rt,), kwargs={"once": False}, daemon=True, name="worker"
    ).start()
    click.echo("worker: started")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
