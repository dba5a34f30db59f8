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


def test_seed_demo_refuses_production_before_touching_the_database(tmp_path, monkeypatch):
    """Demo logins share one published password: with APP_ENV=production `seed-demo` fails with
    a clear message and never opens the database (its PostgreSQL host does not even exist)."""
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    production = {
        "APP_ENV": "production",
        "DATABASE_URL": "postgresql+psycopg://app@db.invalid/erescue",
        "SECRET_KEY": "s" * 40,
        "FIELD_ENCRYPTION_KEY": "k1:" + "QUJD" * 10 + "QUJDRA==",
        "WECHAT_SECRET": "real-secret",
        "WECHAT_CALLBACK_TOKEN": "district-callback-token-2026",
        "WECHAT_API_BASE": "https://api.weixin.qq.com/",
        "MINIPROGRAM_LINK_BASE": "https://jiuzhu.example.cn/mp/",
    }
    for name, value in production.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(main, ["seed-demo"])
    assert result.exit_code == 1
    assert "APP_ENV=production" in result.output and "demo" in result.output
