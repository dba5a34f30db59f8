"""The audit trail, key rotation, backup and restore: the security and system administrators'
commands."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from server import clock
from server.cli.common import redact, runtime
from server.db import unit_of_work

# --- the audit trail --------------------------------------------------------------------------


@click.group("audit")
def audit_group() -> None:
    """The audit trail's chain: verify, export, prune."""


@audit_group.command("verify")
def audit_verify_cmd() -> None:
    """Check every kept entry against its keyed hash and the one before it; exit 1 on a break."""
    from server.services.kernel import audit_chain

    rt = runtime()
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

    rt = runtime()
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

    rt = runtime()
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


@click.command("rotate-keys")
@click.option("--batch", type=int, default=1000, show_default=True, help="values per transaction")
@click.option(
    "--all",
    "everything",
    is_flag=True,
    help="also re-key the hashes of values already sealed under the first key (once, for data "
    "whose hashes the last listed key keyed)",
)
@click.option(
    "--check",
    is_flag=True,
    help="change nothing: say what each listed key still seals, and exit 1 if any value is "
    "under a key the configuration no longer lists (run it with the new configuration before "
    "restarting without an old key)",
)
def rotate_keys_cmd(batch: int, everything: bool, check: bool) -> None:
    """Re-seal every sealed value and re-key every lookup hash under the first key of
    FIELD_ENCRYPTION_KEY, in batches, each committed (safe to stop and run again: it picks up
    what is left). Keep every older key listed until it says that key can be removed."""
    from server.services.kernel import rotation

    rt = runtime()
    if check:
        with rt.session_factory() as db:
            in_use = rotation.keys_in_use(db, rt.pii)
            missing = rotation.unlisted_keys(db, rt.pii)
        for kid, n in in_use.items():
            click.echo(f"{kid}: seals {n} values")
        if missing:
            for kid, n in sorted(missing.items()):
                click.echo(
                    f"key {kid} is not listed but still seals values ({n} found) and keys "
                    "their lookups: list it again (after the first key) and run rotate-keys "
                    "before removing it",
                    err=True,
                )
            sys.exit(1)
        click.echo("every sealed value and lookup hash is under a listed key")
        return
    kid = rt.pii.cipher.current_kid
    with rt.session_factory() as db:
        left = rotation.left_to_rotate(db, rt.pii)
    click.echo(f"re-sealing and re-keying under {kid}: {sum(left.values())} values")
    skipped: list[tuple[str, object]] = []
    steps = rotation.rotate(
        rt.session_factory, rt.pii, batch=batch, everything=everything, skipped=skipped
    )
    for column, done in steps:
        of = left.get(column, 0)
        click.echo(f"  {column}: {done}" + (f" of {of}" if of >= done else ""))
    with rt.session_factory() as db:
        remaining = sum(rotation.left_to_rotate(db, rt.pii).values())
        in_use = rotation.keys_in_use(db, rt.pii)
        orphans = rotation.leftovers(db)
    click.echo(f"done; {remaining} values left under older keys")
    for column, key in skipped:
        click.echo(
            f"  {column} of row {key} was left under the old key: the same person is stored "
            "again under the new key (two open leads, say); close or merge one and run again"
        )
    for old in rt.pii.cipher.lookup_kids[1:]:
        if in_use.get(old):
            click.echo(
                f"key {old} still seals {in_use[old]} values (written meanwhile by a process "
                "with the old configuration?): restart every process, run rotate-keys again, "
                f"and keep {old} listed until then"
            )
        elif remaining:
            click.echo(f"keep {old} listed: values under older keys are left; run again")
        else:
            click.echo(
                f"key {old} no longer seals or keys anything: it can be removed from "
                "FIELD_ENCRYPTION_KEY"
            )
    for column, n in orphans.items():
        if n:
            click.echo(
                f"  note: {n} {column} of people we no longer hold cannot be re-keyed; "
                "they match no one once the old key is removed"
            )


@click.command("backup")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="default: e-rescue-<time>.tar in the working directory")  # fmt: skip
def backup_cmd(out: Path | None) -> None:
    """Back up the database (pg_dump, or SQLite's online backup) and every stored object into
    one tar file, while the app runs."""
    from server import backup

    rt = runtime()
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


@click.command("restore")
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="replace the database's contents without asking")
def restore_cmd(archive: Path, yes: bool) -> None:
    """Replace the database's contents and put the stored objects back from ARCHIVE (stop the
    app and the workers first); every table's row count is checked against the backup."""
    from server import backup

    rt = runtime()
    try:
        manifest = backup.read_manifest(archive)
    except backup.BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    if not yes:
        click.confirm(
            f"Replace everything in {redact(rt.config.database_url)} with the backup of "
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
