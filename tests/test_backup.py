"""`e-rescue backup` / `restore`: a round trip gives back every row of every table and every
stored object, on PostgreSQL (pg_dump / pg_restore) and SQLite (the online backup API)."""

from __future__ import annotations

from click.testing import CliRunner

from server import backup
from server.cli import main
from server.services.kernel import audit_chain
from tests.builders.uploads import make_jpeg, upload
from tests.conftest import _reset


def test_a_backup_restored_over_a_wiped_database_gives_back_every_row_and_object(
    client, resident_login, staff_login, runtime, config, tmp_path
) -> None:
    login = resident_login()
    photo = upload(client, login, make_jpeg(size=(400, 300), color=(4, 5, 6))).get_json()
    staff_login(role="center_staff")  # accounts, tokens and audit entries
    before = backup.row_counts(runtime.engine)
    objects = {key: runtime.storage.get(key) for key in runtime.storage.keys("")}
    assert before["photos"] == 1 and before["audit_entries"] > 0 and objects

    env = {"DATABASE_URL": config.database_url, "UPLOAD_DIR": config.upload_dir}
    archive = tmp_path / "backup.tar"
    made = CliRunner().invoke(main, ["backup", "--out", str(archive)], env=env)
    assert made.exit_code == 0, made.output
    assert f"{len(objects)} objects" in made.output

    _reset(runtime)  # everything gone: every table emptied, every object deleted
    for key in objects:
        runtime.storage.delete(key)
    assert backup.row_counts(runtime.engine)["photos"] == 0

    done = CliRunner().invoke(main, ["restore", "--yes", str(archive)], env=env)
    assert done.exit_code == 0, done.output
    assert backup.row_counts(runtime.engine) == before
    assert {key: runtime.storage.get(key) for key in runtime.storage.keys("")} == objects
    got = client.get(f"/api/v1/uploads/{photo['id']}", headers=login.headers)
    assert got.status_code == 200  # the resident's token came back too
    with runtime.session_factory() as db:
        assert audit_chain.verify(db, key=config.audit_chain_key_bytes).ok


def test_a_file_that_is_not_a_backup_is_refused_before_anything_is_touched(
    runtime, config, tmp_path
) -> None:
    bogus = tmp_path / "bogus.tar"
    bogus.write_bytes(b"not a tar")
    env = {"DATABASE_URL": config.database_url, "UPLOAD_DIR": config.upload_dir}
    before = backup.row_counts(runtime.engine)
    result = CliRunner().invoke(main, ["restore", "--yes", str(bogus)], env=env)
    assert result.exit_code != 0
    assert backup.row_counts(runtime.engine) == before
