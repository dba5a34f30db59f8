"""Builders with keyword-only defaults: override only what a test is about.

Here: ID numbers, logins and the demo data. Each domain's builders are in their own module
(`applications`, `decisions`, `dispatches`, `households`, `idempotency`, `leads`, `ledgers`,
`migrations`, `supervision`, `uploads`, `visits`, `volunteers`); no test module imports another
(tests/test_layers.py checks it). Fixtures every module may use are registered in
tests/conftest.py; a fixture defined differently elsewhere under the same name (`villages`,
`at_time`) is imported by the module that wants this one."""

from __future__ import annotations

import io
import itertools
from dataclasses import dataclass
from typing import Any

import pytest
from PIL import Image

from server import clock
from server.models import Role
from server.services.kernel.access import SYSTEM
from server.services.kernel.idnumber import check_digit

_seq = itertools.count(1)


_jpegs = itertools.count(1)


def unique_jpeg(
    size: tuple[int, int] = (64, 48), tint: tuple[int, int, int] = (200, 10, 10)
) -> bytes:
    """A JPEG no other call returns, so the upload's dedup (by content) never folds two photos
    of one test into one. The call's number is drawn as black and white blocks, which survive
    JPEG's quantisation; a colour per call did not (83 of 254 colours encoded to the same bytes
    as another, and a test that added "another" photo added nothing)."""
    image = Image.new("RGB", size, tint)
    number = next(_jpegs)
    for bit in range(20):  # 10 by 2 blocks of 4 px: fits the smallest photo the tests make
        x, y = (bit % 10) * 4, (bit // 10) * 4
        image.paste((255, 255, 255) if number >> bit & 1 else (0, 0, 0), (x, y, x + 4, y + 4))
    out = io.BytesIO()
    image.save(out, "JPEG")
    return out.getvalue()


def make_id_number(
    *, region: str = "370304", birth: str = "19800101", seq: str | None = None
) -> str:
    """A synthetic ID number with a correct MOD 11-2 check digit."""
    body = f"{region}{birth}{seq or f'{next(_seq) % 1000:03d}'}"
    return body + check_digit(body)


@dataclass
class Login:
    token: str
    user_id: int
    role: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def staff_login(client, runtime):  # noqa: ANN001, ANN201
    """Create a staff account and log in: `staff_login(role="town_staff", town="chengdong")`."""

    def build(
        *,
        role: str = "center_staff",
        town: str | None = None,
        department: str | None = None,
        username: str | None = None,
        password: str = "correct-horse-9",
    ) -> Login:
        from server.services.accounts.staff import create_staff

        if role == "town_staff" and town is None:
            town = "chengdong"
        if role == "department_staff" and department is None:
            department = "medical_insurance"
        username = username or f"{role}-{next(_seq)}"
        with runtime.session_factory() as db:
            create_staff(
                db,
                username=username,
                password=password,
                role=Role(role),
                town_code=town,
                department_code=department,
                now=clock.now(),
                actor=SYSTEM,
                must_change_password=False,
            )
            db.commit()
        resp = client.post(
            "/api/v1/auth/staff-login", json={"username": username, "password": password}
        )
        assert resp.status_code == 200, resp.get_json()
        body = resp.get_json()
        return Login(token=body["token"], user_id=body["user"]["id"], role=role)

    return build


@pytest.fixture
def resident_login(client):  # noqa: ANN001, ANN201
    """Log a resident in through the fake WeChat server: `resident_login("alice")`."""
    counter = itertools.count(1)

    def build(name: str = "alice") -> Login:
        resp = client.post(
            "/api/v1/auth/wechat-login", json={"code": f"user-{name}-{next(counter)}-{next(_seq)}"}
        )
        assert resp.status_code == 200, resp.get_json()
        body = resp.get_json()
        return Login(token=body["token"], user_id=body["user"]["id"], role=body["user"]["role"])

    return build


@pytest.fixture
def helper_login(client, staff_login, resident_login):  # noqa: ANN001, ANN201
    """A WeChat user made helper of an existing village: `helper_login("hank", village="cd-001")`.

    Goes through the real invitation and redeem endpoints (center staff invite).
    """

    def build(name: str = "hank", *, village: str = "cd-001") -> Login:
        staff = staff_login(role="center_staff")
        invited = client.post(
            "/api/v1/helpers/invitations", json={"village": village}, headers=staff.headers
        )
        assert invited.status_code == 201, invited.get_json()
        login = resident_login(name)
        resp = client.post(
            "/api/v1/helpers/redeem",
            json={"code": invited.get_json()["code"]},
            headers=login.headers,
        )
        assert resp.status_code == 200, resp.get_json()
        return Login(token=login.token, user_id=login.user_id, role="helper")

    return build


def error_code(resp: Any) -> str:
    return resp.get_json()["code"]


@pytest.fixture
def staff(runtime):  # noqa: ANN001, ANN201
    """A staff account to log in to the console with (password `correct-horse-9`):
    `staff("center_staff")`, `staff("town_staff", town="baita")`."""
    from server.services.accounts.staff import create_staff

    counter = iter(range(1, 1000))

    def build(role: str = "center_staff", *, town: str | None = None, dept: str | None = None):
        if role == "town_staff" and town is None:
            town = "chengdong"
        if role == "department_staff" and dept is None:
            dept = "medical_insurance"
        username = f"c-{role}-{next(counter)}"
        with runtime.session_factory() as db:
            create_staff(
                db,
                username=username,
                password="correct-horse-9",
                role=Role(role),
                town_code=town,
                department_code=dept,
                now=clock.now(),
                actor=SYSTEM,
                must_change_password=False,
            )
            db.commit()
        return username

    return build


@pytest.fixture
def demo(db, runtime):  # noqa: ANN001, ANN201
    """The demo data set (`e-rescue seed-demo`), committed."""
    from server.demo.seed import seed_demo
    from server.wechat.fake_state import fake_openid

    seed_demo(
        db,
        pii=runtime.pii,
        now=clock.now(),
        storage=runtime.storage,
        openid_for=fake_openid,
    )
    db.commit()
