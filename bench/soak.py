"""Soak test (issue #22): the production shape on PostgreSQL under mixed load for a bounded time,
with workers killed mid-run. Exits 1 when any check fails.

What runs, each in its own process group: the fake WeChat server (as WeChat, its own process),
gunicorn with `deploy/gunicorn.conf.py` and 4 sync app processes on a free loopback port, and 3
`e-rescue worker` processes, all on a fresh PostgreSQL database built by the migrations and a
temporary upload folder. Client threads then drive, for `--seconds`:

- residents: log in through WeChat, upload a photo, file an application with an
  Idempotency-Key (some retried with the same key, some retried while the first is still in
  flight, a few reusing a key for another body: the meant 409), read their list and inbox;
- town staff of two towns: accept, investigate and decide applications of their town, and read
  their lead queue and lead details while idle;
- center staff: issue transfer slips (转办) for the other applications (Idempotency-Key, some
  retried); civil-affairs staff sign them and decide the application in the feedback;
- a reader: the whole lead queue page by page, lead details, slips, outbox stats;
- medical-insurance staff: two department files large enough to be imported by the workers.

Every step that changes an application enqueues a WeChat subscribe message, so the outbox is
busy throughout. Two workers are killed with SIGKILL (`--kills 1`: only the first), each
replaced 2 s later as systemd's `Restart=always` would: at 30 % of the time one that has just
marked a message sent while claimed messages wait, at 46 % the one importing the second file
(its job is taken over when the lease runs out). When the time is up the queues are left to
drain (bounded by `--drain`), then the checks: no 5xx, no connection error, no 4xx the load did
not mean; every application answered 201 exists once (retried keys included); every outbox
message the load's steps should have enqueued exists once and ended `sent`; WeChat received
each once, except at most one resend per killed worker (the at-least-once window of
worker/outbox.py); every job and department file done, one evidence row per file row; every
process alive and no traceback in any log.

    python bench/soak.py [--seconds 90] [--drain 240] [--residents 4] [--kills 2] [--keep-logs]
"""

# ruff: noqa: E402  (the project root goes on the import path before the imports)
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The project root replaces this script's folder on the import path (nothing in bench/ may
# shadow a standard module).
sys.path[0] = str(ROOT)

import argparse
import io
import itertools
import json
import os
import queue
import random
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests
from PIL import Image
from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine, make_url

from bench.support.databases import pg_url, postgresql_database
from bench.support.http_load import percentile
from bench.support.people import id_number as numbered_id
from bench.support.processes import Processes, start_fake_wechat, start_gunicorn
from server import clock
from server.config import Config
from server.db import make_engine, unit_of_work
from server.models import (
    Application,
    FeedBatch,
    InboxMessage,
    Job,
    LeadEvidence,
    OutboxMessage,
    Role,
    User,
)
from server.runtime import Runtime
from server.services.accounts.staff import create_staff
from server.services.kernel.access import SYSTEM
from server.services.notifications.messages import template_for
from server.services.places.areas import save_village

APP_PROCESSES = 4
WORKERS = 3
#: Every template is long-term (public-service mini-programs): each message is sent, none is
#: `skipped` for want of a one-time subscription, so `sent` is the only right end state.
TEMPLATES = (
    "tmpl-application-received",
    "tmpl-application-status",
    "tmpl-application-result",
    "tmpl-revisit-request",
)
SEND_PATH = "cgi-bin/message/subscribe/send"
PASSWORD = "Soak-password-2026"
#: town → the village residents of that town file from.
TOWNS = {"chengdong": "soak-cd-01", "chengxi": "soak-cx-01"}
#: Rows of each department file: more than 256 KB, so the worker imports it (202).
FEED_ROWS = 5000
FEED_HEADER = "序号,姓名,公民身份号码,定点医疗机构,入院日期,出院日期,个人负担合规费用"
REQUEST_TIMEOUT = 60


# --- the database --------------------------------------------------------------------------


@dataclass(frozen=True)
class Staff:
    username: str
    role: Role
    town: str | None = None
    department: str | None = None


STAFF = {
    "center": Staff("soak-center", Role.CENTER_STAFF),
    "reader": Staff("soak-reader", Role.CENTER_STAFF),
    "civil": Staff("soak-civil", Role.DEPARTMENT_STAFF, department="civil_affairs"),
    "insurance": Staff("soak-insurance", Role.DEPARTMENT_STAFF, department="medical_insurance"),
    **{town: Staff(f"soak-{town}", Role.TOWN_STAFF, town=town) for town in TOWNS},
}


def prepare(url: str) -> None:
    """The villages and staff accounts, through services (on a migrated database)."""
    rt = Runtime.build(Config(database_url=url))  # its sessions chain the audit entries
    with unit_of_work(rt.session_factory) as db:
        for town, village in TOWNS.items():
            save_village(db, actor=SYSTEM, town_code=town, code=village, name=f"浸泡{village}村")
        for staff in STAFF.values():
            create_staff(
                db,
                username=staff.username,
                password=PASSWORD,
                role=staff.role,
                town_code=staff.town,
                department_code=staff.department,
                now=clock.now(),
                actor=SYSTEM,
                must_change_password=False,
            )
    rt.dispose()


# --- processes -----------------------------------------------------------------------------


def environment(url: str, fake: str, work: Path) -> dict[str, str]:
    prometheus = work / "prometheus"
    prometheus.mkdir(exist_ok=True)
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "APP_ENV": "development",
        "DATABASE_URL": url,
        "UPLOAD_DIR": str(work / "uploads"),
        "WECHAT_API_BASE": fake,
        "WECHAT_LONG_TERM_TEMPLATES": ",".join(TEMPLATES),
        "LOG_LEVEL": "WARNING",
        "PROMETHEUS_MULTIPROC_DIR": str(prometheus),
    }


def start_worker(procs: Processes, env: dict[str, str], n: int) -> None:
    procs.start(f"worker-{n}", [sys.executable, "-m", "server.cli", "worker"], env)


# --- the client side -----------------------------------------------------------------------


@dataclass
class Stats:
    """Every request's kind, status and time; the failures with a few examples."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    errors: list[str] = field(default_factory=list)
    meant: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, kind: str, status: str, ms: float, error: str | None, meant: bool) -> None:
        with self.lock:
            self.latencies[kind].append(ms)
            self.statuses[kind][status] += 1
            if meant:
                self.meant[f"{kind} {status}"] += 1
            if error is not None:
                self.errors.append(f"{kind} {status}: {error}")

    def fail(self, message: str) -> None:
        """A wrong answer that had a good status (a retried key answered another id)."""
        with self.lock:
            self.errors.append(message)


@dataclass
class Filed:
    application_id: int
    lead_id: int
    token: str


@dataclass
class Ledger:
    """What the load was told: applications by key, and each application's steps."""

    by_key: dict[str, int] = field(default_factory=dict)
    steps: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))
    slips: dict[str, int] = field(default_factory=dict)
    batches: list[int] = field(default_factory=list)
    retries: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def step(self, application_id: int, status: str) -> None:
        with self.lock:
            self.steps[application_id].append(status)


_ids = itertools.count(1)


def id_number(offset: int = 0) -> str:
    """A synthetic ID number with a correct check digit, distinct for every call."""
    return numbered_id(next(_ids) + offset)


def jpeg(seed: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 240), (seed % 256, (seed * 7) % 256, 90)).save(out, "JPEG")
    return out.getvalue()


class Load:
    """The client threads, sharing the work queues between residents and staff."""

    def __init__(self, base: str, seconds: float, *, residents: int, think: float) -> None:
        self.base = base
        self.stats = Stats()
        self.ledger = Ledger()
        self.residents = residents
        self.think = think
        self.began = time.monotonic()
        self.stop_at = self.began + seconds
        self.direct: dict[str, queue.Queue[Filed]] = {town: queue.Queue() for town in TOWNS}
        self.transfers: queue.Queue[Filed] = queue.Queue()
        self.slips: queue.Queue[tuple[int, Filed]] = queue.Queue()
        self.tokens: dict[str, str] = {}
        self._local = threading.local()

    # -- HTTP --

    def over(self) -> bool:
        return time.monotonic() >= self.stop_at

    def http(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def call(
        self,
        kind: str,
        method: str,
        path: str,
        *,
        token: str | None = None,
        expect: tuple[int, ...] = (200,),
        meant: tuple[int, ...] = (),
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response | None:
        """One request, timed and recorded; None unless its status is one of `expect`."""
        headers = {**(headers or {}), **({"Authorization": f"Bearer {token}"} if token else {})}
        began = time.perf_counter()
        try:
            resp = self.http().request(
                method, self.base + path, headers=headers, timeout=REQUEST_TIMEOUT, **kwargs
            )
        except requests.RequestException as exc:
            ms = (time.perf_counter() - began) * 1000
            self.stats.record(kind, "connection", ms, type(exc).__name__, False)
            return None
        ms = (time.perf_counter() - began) * 1000
        good = resp.status_code in expect or resp.status_code in meant
        error = None if good else resp.text[:300]
        self.stats.record(kind, str(resp.status_code), ms, error, resp.status_code in meant)
        return resp if resp.status_code in expect else None

    def staff_login(self, who: str) -> str:
        body = {"username": STAFF[who].username, "password": PASSWORD}
        resp = self.call("staff login", "POST", "/api/v1/auth/staff-login", json=body)
        if resp is None:
            raise RuntimeError(f"staff {who} cannot log in")
        return resp.json()["token"]

    # -- residents --

    def resident(self, n: int) -> None:
        rng = random.Random(n)
        serial = itertools.count(1)
        token = ""
        for filed in itertools.count():
            if self.over():
                return
            if filed % 3 == 0:  # a new resident every few applications
                token = self.wechat_login(f"user-soak{n}x{next(serial)}-1") or ""
            if token:
                self.file_one(token, rng)
            time.sleep(rng.uniform(0.5, 1.5) * self.think)

    def wechat_login(self, code: str) -> str | None:
        resp = self.call("resident login", "POST", "/api/v1/auth/wechat-login", json={"code": code})
        if resp is None:
            return None
        self.call(
            "subscription templates",
            "GET",
            "/api/v1/subscriptions/templates",
            token=resp.json()["token"],
        )
        return resp.json()["token"]

    def file_one(self, token: str, rng: random.Random) -> None:
        town = rng.choice(list(TOWNS))
        photo = self.call(
            "photo upload",
            "POST",
            "/api/v1/uploads",
            token=token,
            expect=(201,),
            files={"file": ("photo.jpg", jpeg(rng.randrange(10**6)), "image/jpeg")},
        )
        if photo is None:
            return
        body = application_body(town, photo.json()["id"])
        key = uuid.uuid4().hex
        roll = rng.random()
        answer = self.file_racing(token, body, key) if roll < 0.1 else self.file(token, body, key)
        if answer is None:
            return
        if roll < 0.3:
            self.retry(token, body, key, answer, "retried after its answer")
        elif roll < 0.34:
            self.reuse_key(token, body, key)
        self.read_mine(token, answer["id"], rng)
        filed = Filed(answer["id"], answer["lead_id"], token)
        (self.transfers if rng.random() < 0.4 else self.direct[town]).put(filed)

    def file(self, token: str, body: dict[str, Any], key: str) -> dict[str, Any] | None:
        resp = self.call(
            "file application",
            "POST",
            "/api/v1/applications",
            token=token,
            expect=(201,),
            headers={"Idempotency-Key": key},
            json=body,
        )
        if resp is None:
            return None
        answer = resp.json()
        with self.ledger.lock:
            first = self.ledger.by_key.setdefault(key, answer["id"])
        if first != answer["id"]:
            self.stats.fail(f"key {key} answered application {answer['id']} and {first}")
        self.ledger.step(answer["id"], "submitted")
        return answer

    def file_racing(self, token: str, body: dict[str, Any], key: str) -> dict[str, Any] | None:
        """The client gave up waiting and sent it again while the first was in flight."""
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(self.file, token, body, key)
            time.sleep(random.uniform(0, 0.05))
            second = pool.submit(self.file, token, body, key)
            answers = [first.result(), second.result()]
        self.ledger.retries["sent twice at once"] += 1
        if answers[0] and answers[1] and answers[0]["id"] != answers[1]["id"]:
            ids = f"{answers[0]['id']}, {answers[1]['id']}"
            self.stats.fail(f"racing key {key}: applications {ids}")
        return answers[0] or answers[1]

    def retry(
        self, token: str, body: dict[str, Any], key: str, answer: dict[str, Any], why: str
    ) -> None:
        again = self.file(token, body, key)
        self.ledger.retries[why] += 1
        if again is not None and again["id"] != answer["id"]:
            self.stats.fail(f"retried key {key}: application {again['id']} for {answer['id']}")

    def reuse_key(self, token: str, body: dict[str, Any], key: str) -> None:
        """The same key for another body: refused (409), nothing filed."""
        other = {**body, "reason": body["reason"] + "（修改）"}
        self.call(
            "file application",
            "POST",
            "/api/v1/applications",
            token=token,
            expect=(),
            meant=(409,),
            headers={"Idempotency-Key": key},
            json=other,
        )
        self.ledger.retries["key reused for another body (409)"] += 1

    def read_mine(self, token: str, application_id: int, rng: random.Random) -> None:
        self.call("resident reads", "GET", f"/api/v1/applications/{application_id}", token=token)
        if rng.random() < 0.5:
            self.call("resident reads", "GET", "/api/v1/applications", token=token)
            self.call("resident reads", "GET", "/api/v1/messages", token=token)

    # -- staff --

    def town_staff(self, town: str) -> None:
        token = self.staff_login(town)
        work = self.direct[town]
        while not self.over():
            try:
                filed = work.get(timeout=0.5)
            except queue.Empty:
                self.read_queue(token, pages=1, details=2)
                continue
            self.decide_directly(token, filed)

    def decide_directly(self, token: str, filed: Filed) -> None:
        path = f"/api/v1/applications/{filed.application_id}"
        self.call("lead detail", "GET", f"/api/v1/leads/{filed.lead_id}", token=token)
        for step, status in (("accept", "accepted"), ("investigate", "investigating")):
            if self.call(f"decision: {step}", "POST", f"{path}/{step}", token=token) is None:
                return
            self.ledger.step(filed.application_id, status)
        body = {"outcome": "not_eligible", "reason": "家庭收入高于当地低保标准"}
        if self.call("decision: decide", "POST", f"{path}/decide", token=token, json=body):
            self.ledger.step(filed.application_id, "decided")

    def center_staff(self) -> None:
        token = self.staff_login("center")
        rng = random.Random(99)
        while not self.over():
            try:
                filed = self.transfers.get(timeout=0.5)
            except queue.Empty:
                self.call("outbox stats", "GET", "/api/v1/outbox/stats", token=token)
                continue
            self.issue_slip(token, filed, rng)

    def issue_slip(self, token: str, filed: Filed, rng: random.Random) -> None:
        key = uuid.uuid4().hex
        body = {
            "unit_kind": "department",
            "unit_code": "civil_affairs",
            "instructions": "请入户核实家庭收入和财产状况，五个工作日内反馈。",
        }
        path = f"/api/v1/leads/{filed.lead_id}/dispatches"
        tries = 2 if rng.random() < 0.2 else 1
        ids = set()
        for _ in range(tries):
            resp = self.call(
                "transfer: issue",
                "POST",
                path,
                token=token,
                expect=(201,),
                headers={"Idempotency-Key": key},
                json=body,
            )
            if resp is not None:
                ids.add(resp.json()["id"])
        if len(ids) > 1:
            self.stats.fail(f"slip key {key} answered slips {sorted(ids)}")
        if tries > 1:
            self.ledger.retries["slip retried with its key"] += 1
        if ids:
            self.ledger.slips[key] = min(ids)
            self.ledger.step(filed.application_id, "accepted")
            self.slips.put((min(ids), filed))

    def department_staff(self) -> None:
        token = self.staff_login("civil")
        while not self.over():
            try:
                slip, filed = self.slips.get(timeout=0.5)
            except queue.Empty:
                self.call("slips list", "GET", "/api/v1/dispatches", token=token)
                continue
            self.answer_slip(token, slip, filed)

    def answer_slip(self, token: str, slip: int, filed: Filed) -> None:
        path = f"/api/v1/dispatches/{slip}"
        self.call("slip detail", "GET", path, token=token)
        if self.call("transfer: sign", "POST", f"{path}/sign", token=token) is None:
            return
        self.ledger.step(filed.application_id, "investigating")
        body = {
            "findings": "入户核实：家庭人均收入低于低保标准，符合条件。",
            "decisions": [{"application_id": filed.application_id, "outcome": "dibao"}],
        }
        if self.call("transfer: feedback", "POST", f"{path}/feedback", token=token, json=body):
            self.ledger.step(filed.application_id, "decided")

    def reader(self) -> None:
        token = self.staff_login("reader")
        while not self.over():
            self.read_queue(token, pages=3, details=3)
            self.call("slips list", "GET", "/api/v1/dispatches", token=token)
            time.sleep(0.2 * self.think)

    def read_queue(self, token: str, *, pages: int, details: int) -> None:
        """The lead queue page by page (keyset cursor), then a few leads' details."""
        cursor: str | None = None
        items: list[dict[str, Any]] = []
        for _ in range(pages):
            params = {"limit": 20, **({"cursor": cursor} if cursor else {})}
            resp = self.call("lead queue", "GET", "/api/v1/leads", token=token, params=params)
            if resp is None:
                return
            page = resp.json()
            items += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        for item in random.sample(items, min(details, len(items))):
            self.call("lead detail", "GET", f"/api/v1/leads/{item['id']}", token=token)

    # -- department files --

    def department_files(self, seconds: float) -> None:
        token = self.staff_login("insurance")
        for n, share in enumerate((0.1, 0.45)):
            time.sleep(max(self.began + seconds * share - time.monotonic(), 0))
            if self.over():
                return
            content = feed_file(offset=10_000_000 * (n + 1))
            resp = self.call(
                "department file upload",
                "POST",
                "/api/v1/feeds/insurance_oop/batches",
                token=token,
                expect=(202,),
                files={"file": (f"医保{n + 1}.csv", content, "text/csv")},
            )
            if resp is not None:
                with self.ledger.lock:
                    self.ledger.batches.append(resp.json()["id"])

    def run(self, seconds: float, events: list[tuple[float, Callable[[], None]]]) -> float:
        """Drive the load for `seconds`; each event runs at its share of the time."""
        threads = [
            *(threading.Thread(target=self.resident, args=(n,)) for n in range(self.residents)),
            *(threading.Thread(target=self.town_staff, args=(town,)) for town in TOWNS),
            threading.Thread(target=self.center_staff),
            threading.Thread(target=self.department_staff),
            threading.Thread(target=self.reader),
            threading.Thread(target=self.department_files, args=(seconds,)),
        ]
        for thread in threads:
            thread.daemon = True  # a failure of the run must not wait for the load to end
            thread.start()
        for share, event in sorted(events, key=lambda e: e[0]):
            time.sleep(max(self.began + seconds * share - time.monotonic(), 0))
            event()
        for thread in threads:
            thread.join()
        return time.monotonic() - self.began


def application_body(town: str, photo: int) -> dict[str, Any]:
    return {
        "type": "dibao",
        "applicant": {
            "name": "王秀英",
            "id_number": id_number(),
            "phone": "13812345678",
            "town": town,
            "village": TOWNS[town],
            "address": "幸福路1号",
        },
        "household": [{"name": "李建国", "relation": "配偶"}],
        "monthly_income": "600.00",
        "reason": "家中老人长期患病，无固定收入。",
        "photo_ids": [photo],
    }


def feed_file(*, offset: int) -> bytes:
    """A medical-insurance csv of FEED_ROWS people, each above the threshold, none twice."""
    rng = random.Random(offset)
    lines = [FEED_HEADER]
    for i in range(FEED_ROWS):
        amount = rng.uniform(20_000, 90_000)
        lines.append(
            f"{i + 1},{rng.choice('王李张刘陈杨')}{rng.choice('秀英建国桂兰玉华')},"
            f"{id_number(offset)},博山区人民医院,2026-03-01,2026-03-11,{amount:.2f}"
        )
    content = "\n".join(lines).encode("utf-8-sig")
    assert len(content) > 256 * 1024, "the file must be large enough for the worker"
    return content


class Killer:
    """Kills workers with SIGKILL mid-run and starts a replacement for each, as systemd's
    `Restart=always` would."""

    def __init__(
        self, procs: Processes, env: dict[str, str], engine: Engine, *, began: float
    ) -> None:
        self.procs, self.env, self.engine, self.began = procs, env, engine, began
        self.killed: list[str] = []
        self._next = itertools.count(WORKERS + 1)

    def kill_sending(self) -> None:
        """A worker that has just marked a message sent while leased rows wait to be sent
        (waiting up to 15 s for one): the at-least-once window's neighbourhood."""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with self.engine.connect() as conn:
                port = conn.execute(_SENDER).scalar()
            name = self._by_pid().get(_pid_of_port(port)) if port else None
            if name is not None:
                self._kill(name, "between two sends of its claimed messages")
                return
            time.sleep(0.05)
        self._kill(self._workers()[0], "(no worker was sending)")

    def kill_importing(self) -> None:
        """The worker running a department file's import (waiting up to 15 s for one)."""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with self.engine.connect() as conn:
                holder = conn.execute(_IMPORTING).scalar()
            name = self._by_pid().get(int(holder.split(":")[1])) if holder else None
            if name is not None:
                self._kill(name, "in the middle of a department file's import")
                return
            time.sleep(0.2)
        self._kill(self._workers()[0], "(no import was running)")

    def _workers(self) -> list[str]:
        return [name for name in self.procs.running if name.startswith("worker-")]

    def _by_pid(self) -> dict[int, str]:
        return {self.procs.running[name].pid: name for name in self._workers()}

    def _kill(self, name: str, why: str) -> None:
        self.procs.kill(name)
        self.killed.append(name)
        print(f"  t={time.monotonic() - self.began:.0f} s: {name} killed {why}", flush=True)
        time.sleep(2)  # RestartSec=2 of e-rescue-worker@.service
        start_worker(self.procs, self.env, next(self._next))


#: The client port of a worker's connection whose last statement, a moment ago, marked a
#: message sent, while claimed messages are still waiting (state `sending`).
_SENDER = text(
    "SELECT client_port FROM pg_stat_activity WHERE datname = current_database()"
    " AND query LIKE 'UPDATE outbox_messages SET state=%sent_at=%'"
    " AND state_change > now() - interval '300 milliseconds'"
    " AND EXISTS (SELECT 1 FROM outbox_messages WHERE state = 'sending')"
    " ORDER BY state_change DESC LIMIT 1"
)


def _pid_of_port(port: int) -> int | None:
    """The local process whose TCP connection has source port `port` (`ss -tnp`)."""
    out = subprocess.run(
        ["ss", "-tnpH", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    found = re.search(r"pid=(\d+)", out)
    return int(found.group(1)) if found else None


#: `locked_by` of a running import: "host:pid:thread".
_IMPORTING = text(
    "SELECT locked_by FROM jobs WHERE kind = 'feeds.import_batch' AND status = 'running' LIMIT 1"
)


# --- draining and checking -----------------------------------------------------------------


_UNFINISHED_OUTBOX = text(
    "SELECT count(*) FROM outbox_messages WHERE state IN ('pending', 'sending')"
)
_UNFINISHED_JOBS = text(
    "SELECT count(*) FROM jobs WHERE status IN ('queued', 'running') AND run_at <= now()"
)
_UNFINISHED_BATCHES = text(
    "SELECT count(*) FROM feed_batches WHERE status IN ('queued', 'running')"
)


def unfinished(engine: Engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        return tuple(
            conn.execute(q).scalar_one()
            for q in (_UNFINISHED_OUTBOX, _UNFINISHED_JOBS, _UNFINISHED_BATCHES)
        )


def drain(engine: Engine, seconds: float) -> tuple[float, tuple[int, int, int]]:
    """Wait until no message, job or file is left to do (or `seconds` passed)."""
    began = time.monotonic()
    left = unfinished(engine)
    while any(left) and time.monotonic() - began < seconds:
        time.sleep(1.0)
        left = unfinished(engine)
    return time.monotonic() - began, left


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def send_key(openid: str, template: str, page: str | None, data: dict[str, str]) -> str:
    return json.dumps([openid, template, page, sorted(data.items())], ensure_ascii=False)


def check_applications(engine: Engine, ledger: Ledger) -> list[Check]:
    with engine.connect() as conn:
        ids = [r[0] for r in conn.execute(select(Application.id))]
    answered = set(ledger.by_key.values())
    counts = Counter(ids)
    return [
        Check(
            "every application answered 201 exists once, and nothing else",
            set(ids) == answered and max(counts.values(), default=1) == 1,
            f"{len(answered)} answered 201 under {len(ledger.by_key)} keys, {len(ids)} in the "
            f"database; missing {sorted(answered - set(ids))[:5]}, "
            f"unanswered {sorted(set(ids) - answered)[:5]}",
        )
    ]


def check_outbox(engine: Engine, ledger: Ledger) -> tuple[list[Check], list[dict[str, Any]]]:
    expected = {
        f"application:{app_id}:{status}"
        for app_id, statuses in ledger.steps.items()
        for status in statuses
    }
    with engine.connect() as conn:
        rows = [
            dict(r._mapping)
            for r in conn.execute(
                select(
                    OutboxMessage.id,
                    OutboxMessage.dedup_key,
                    OutboxMessage.event,
                    OutboxMessage.data,
                    OutboxMessage.page,
                    OutboxMessage.state,
                    OutboxMessage.attempts,
                    OutboxMessage.created_at,
                    OutboxMessage.sent_at,
                    User.openid,
                ).join(User, User.id == OutboxMessage.user_id)
            )
        ]
        inbox = conn.execute(select(func.count()).select_from(InboxMessage)).scalar_one()
    keys = Counter(r["dedup_key"] for r in rows)
    states = Counter(str(r["state"]) for r in rows)
    return [
        Check(
            "0 duplicates at enqueue: one outbox row per application step",
            max(keys.values(), default=1) == 1 and inbox == len(rows),
            f"{len(rows)} outbox rows, {len(keys)} dedup keys, {inbox} inbox rows",
        ),
        Check(
            "nothing lost at enqueue: a message for every step the API answered",
            set(keys) == expected,
            f"{len(expected)} expected; missing {sorted(expected - set(keys))[:5]}, "
            f"unexpected {sorted(set(keys) - expected)[:5]}",
        ),
        Check(
            "every message ended sent",
            states == Counter({"sent": len(rows)}),
            ", ".join(f"{state} {n}" for state, n in sorted(states.items())),
        ),
    ], rows


def check_sends(rows: list[dict[str, Any]], calls: list[dict[str, Any]], killed: int) -> Check:
    """Each sent message reached WeChat once; at most one resend per killed worker."""
    config = Config(wechat_long_term_templates=",".join(TEMPLATES))
    expected = Counter(
        send_key(r["openid"], template_for(config, r["event"]).template_id, r["page"], r["data"])
        for r in rows
    )
    received = Counter(
        send_key(
            c["json"]["touser"],
            c["json"]["template_id"],
            c["json"].get("page"),
            {k: v["value"] for k, v in c["json"]["data"].items()},
        )
        for c in calls
    )
    ambiguous = sum(n - 1 for n in expected.values() if n > 1)
    never = sum(1 for key in expected if received[key] == 0)
    strangers = sum(n for key, n in received.items() if key not in expected)
    duplicates = sum(max(n - 1, 0) for key, n in received.items() if key in expected)
    return Check(
        f"no duplicate messages (≤ {killed}, one per killed worker)",
        not ambiguous and not never and not strangers and duplicates <= killed,
        f"{len(calls)} sends received for {len(rows)} messages: duplicates {duplicates}, "
        f"never received {never}, not ours {strangers}, indistinguishable {ambiguous}",
    )


def check_work(engine: Engine, ledger: Ledger) -> list[Check]:
    with engine.connect() as conn:
        jobs = Counter(
            f"{kind} {status}"
            for kind, status in conn.execute(
                select(Job.kind, Job.status).where(Job.run_at <= func.now())
            )
        )
        batches = {
            b.id: (str(b.status), b.rows_done, b.rows_total)
            for b in conn.execute(
                select(FeedBatch.id, FeedBatch.status, FeedBatch.rows_done, FeedBatch.rows_total)
            )
        }
        # One evidence row per row of a file (distinct people, all above the threshold):
        # fewer is a row lost, more a row imported twice (a killed import run again).
        evidence = dict(
            conn.execute(
                select(LeadEvidence.batch_id, func.count())
                .where(LeadEvidence.batch_id.is_not(None))
                .group_by(LeadEvidence.batch_id)
            ).all()
        )
    files_done = set(batches) == set(ledger.batches) == set(evidence) and all(
        status == "done" and done == total == evidence[batch_id] == FEED_ROWS
        for batch_id, (status, done, total) in batches.items()
    )
    return [
        Check(
            "every due job done",
            all(key.endswith(" done") for key in jobs),
            ", ".join(f"{key} {n}" for key, n in sorted(jobs.items())),
        ),
        Check(
            f"every department file imported, one evidence row for each of its {FEED_ROWS} rows",
            files_done and len(ledger.batches) > 0,
            f"batches (status, rows done, rows) {batches}, evidence rows by batch {evidence}",
        ),
    ]


def check_requests(stats: Stats) -> Check:
    counts = {kind: sum(c.values()) for kind, c in stats.statuses.items()}
    return Check(
        "0 errors: no 5xx, no connection error, no 4xx the load did not mean",
        not stats.errors,
        f"{sum(counts.values())} requests, {len(stats.errors)} errors "
        f"{stats.errors[:5]}; meant: {dict(stats.meant)}",
    )


# --- the report ----------------------------------------------------------------------------


def print_requests(stats: Stats, seconds: float) -> None:
    print(f"\nrequests over {seconds:.0f} s of load:")
    print(f"  {'kind':<26} {'count':>6} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8}  statuses")
    every: list[float] = []
    for kind in sorted(stats.latencies):
        ms = stats.latencies[kind]
        every += ms
        statuses = " ".join(f"{s}×{n}" for s, n in sorted(stats.statuses[kind].items()))
        print(
            f"  {kind:<26} {len(ms):>6} {len(ms) / seconds:>7.1f} {percentile(ms, 0.5):>8.1f}"
            f" {percentile(ms, 0.99):>8.1f}  {statuses}"
        )
    print(
        f"  {'all':<26} {len(every):>6} {len(every) / seconds:>7.1f}"
        f" {percentile(every, 0.5):>8.1f} {percentile(every, 0.99):>8.1f}"
    )


def print_messages(rows: list[dict[str, Any]], load_seconds: float, drained: float) -> None:
    sent = [r for r in rows if r["sent_at"] is not None]
    waits = [(r["sent_at"] - r["created_at"]).total_seconds() for r in sent]
    resent = sum(1 for r in rows if r["attempts"] > 1)
    if sent:
        first, last = min(r["created_at"] for r in rows), max(r["sent_at"] for r in sent)
        span = (last - first).total_seconds()
        print(
            f"\nmessages: {len(sent)} sent in {span:.0f} s ({len(sent) / max(span, 1):.1f}/s;"
            f" load {load_seconds:.0f} s + drain {drained:.0f} s), enqueue → sent"
            f" p50 {percentile(waits, 0.5):.1f} s, p99 {percentile(waits, 0.99):.1f} s,"
            f" max {max(waits):.1f} s; claimed more than once: {resent}"
        )


def fake_calls(fake: str) -> list[dict[str, Any]]:
    resp = requests.get(fake + "_fake/calls", params={"path": SEND_PATH}, timeout=120)
    return resp.json()["calls"]


# --- main ----------------------------------------------------------------------------------


def soak(args: argparse.Namespace, url: str, work: Path) -> list[Check]:
    print(f"database ready: {make_url(url).database}", flush=True)
    procs = Processes(work)
    try:
        env = environment(url, "", work)
        fake = start_fake_wechat(procs, env)
        env["WECHAT_API_BASE"] = fake
        # The master listens before its workers booted: several real answers first.
        base = start_gunicorn(procs, env, workers=APP_PROCESSES, answers=8, seconds=90)
        for n in range(1, WORKERS + 1):
            start_worker(procs, env, n)
        print(
            f"app: gunicorn ×{APP_PROCESSES} at {base}, {WORKERS} workers, fake WeChat at "
            f"{fake}; load for {args.seconds:.0f} s",
            flush=True,
        )
        load = Load(base, args.seconds, residents=args.residents, think=args.think)
        engine = make_engine(url)
        killer = Killer(procs, env, engine, began=load.began)
        before = os.getloadavg()
        # While the outbox is busy; then a worker in the middle of the second file's import
        # (uploaded at 45 %), whose job must be taken over when its lease runs out.
        events = [(0.3, killer.kill_sending), (0.46, killer.kill_importing)][: args.kills]
        load_seconds = load.run(args.seconds, events)
        after = os.getloadavg()
        killed = killer.killed
        drained, left = drain(engine, args.drain)
        print(
            f"load done in {load_seconds:.0f} s; drained in {drained:.0f} s (left: messages "
            f"{left[0]}, jobs {left[1]}, files {left[2]})",
            flush=True,
        )
        print_requests(load.stats, load_seconds)
        checks = [check_requests(load.stats), *check_applications(engine, load.ledger)]
        outbox_checks, rows = check_outbox(engine, load.ledger)
        checks += outbox_checks
        checks.append(
            check_sends(
                [r for r in rows if str(r["state"]) == "sent"], fake_calls(fake), len(killed)
            )
        )
        checks += check_work(engine, load.ledger)
        died = procs.died()
        tracebacks = procs.tracebacks()
        checks.append(
            Check(
                "every process alive, no traceback in any log",
                not died and not tracebacks,
                f"died {died}, tracebacks {tracebacks}",
            )
        )
        print_messages(rows, load_seconds, drained)
        print(f"retries: {dict(load.ledger.retries)}")
        print(
            f"load average (1, 5, 15 min): before {before[0]:.1f} {before[1]:.1f} "
            f"{before[2]:.1f}, after {after[0]:.1f} {after[1]:.1f} {after[2]:.1f}; "
            f"{os.cpu_count()} cores"
        )
        engine.dispose()
        return checks
    finally:
        procs.stop_all()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=90, help="load time")
    parser.add_argument("--drain", type=float, default=240, help="longest wait for the queues")
    parser.add_argument("--residents", type=int, default=4, help="resident client threads")
    parser.add_argument("--think", type=float, default=1.0, help="scale of think times")
    parser.add_argument("--kills", type=int, default=2, choices=(1, 2), help="workers killed")
    parser.add_argument("--keep-logs", action="store_true", help="keep the processes' logs")
    args = parser.parse_args()
    # SIGTERM (a CI timeout) unwinds like Ctrl-C: processes stopped, the database dropped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = Path(tempfile.mkdtemp(prefix="soak-"))
    checks: list[Check] = []
    try:
        database = postgresql_database(pg_url("SOAK_PG_URL"), prefix="soak", tables="migrations")
        with database as url:
            prepare(url)
            checks = soak(args, url, work)
    finally:
        failed = not checks or not all(c.ok for c in checks)
        if args.keep_logs or failed:
            print(f"logs: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print("\nchecks:")
    for check in checks:
        print(f"  [{'ok' if check.ok else 'FAIL'}] {check.name}: {check.detail}")
    sys.exit(0 if checks and all(c.ok for c in checks) else 1)


if __name__ == "__main__":
    main()
