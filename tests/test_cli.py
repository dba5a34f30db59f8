"""Operator commands: migrate, create staff, load villages, seed demo data."""

from __future__ import annotations

from click.testing import CliRunner

from server.cli import main


def test_db_upgrade_create_staff_villages_and_demo_on_a_fresh_database(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    runner = CliRunner()
    assert runner.invoke(main, ["db", "upgrade"]).exit_code == 0
    assert runner.invoke(main, ["db", "upgrade"]).exit_code == 0  # idempotent
    result = runner.invoke(
        main,
        [
            "create-staff",
            "--username",
            "zhang",
            "--password",
            "long-password-1",
            "--role",
            "town_staff",
            "--town",
            "baita",
        ],
    )
    assert result.exit_code == 0, result.output
    bad = runner.invoke(
        main,
        [
            "create-staff",
            "--username",
            "li",
            "--password",
            "long-password-1",
            "--role",
            "town_staff",
        ],
    )
    assert bad.exit_code != 0 and "镇街" in bad.output
    villages = tmp_path / "v.csv"
    villages.write_text("镇街,村居,编码\n白塔镇,西坡村,370304105001\n", encoding="utf-8")
    result = runner.invoke(main, ["load-villages", str(villages)])
    assert "1 created" in result.output
    demo = runner.invoke(main, ["seed-demo"])
    assert "center" in demo.output and "demo-password" in demo.output
    assert "nothing added" in runner.invoke(main, ["seed-demo"]).output
