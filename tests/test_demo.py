"""The demo data shows a living system: staff, leads, and a resident with applications."""

from __future__ import annotations

from server import clock
from server.services.demo import seed_demo
from server.wechat.fake_server import fake_openid


def _seed(db, runtime) -> list[tuple[str, str, str]]:
    logins = seed_demo(
        db,
        pii=runtime.pii,
        now=clock.now(),
        upload_dir=runtime.config.upload_dir,
        openid_for=fake_openid,
    )
    db.commit()
    return logins


def test_demo_resident_logs_in_and_sees_applications_at_each_step(client, db, runtime):
    _seed(db, runtime)
    token = client.post("/api/v1/auth/wechat-login", json={"code": "demo-alice"}).get_json()
    headers = {"Authorization": f"Bearer {token['token']}"}
    items = client.get("/api/v1/applications", headers=headers).get_json()["items"]
    assert sorted(a["status"] for a in items) == ["decided", "investigating", "submitted"]
    decided = next(a for a in items if a["status"] == "decided")
    assert decided["outcome_label"] == "给予医疗救助"


def test_demo_seed_runs_once(db, runtime):
    assert _seed(db, runtime)
    assert _seed(db, runtime) == []
