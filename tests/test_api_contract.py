"""Property-based contract test: schemathesis against our own OpenAPI document.

The document the app serves at `/api/openapi.json` is loaded through schemathesis's WSGI
transport (no network; WeChat calls go to the fake server the `config` fixture points at). Every
operation gets a bounded number of generated requests, sent anonymously, as a center_staff user
and as a resident. Each response must:

* not be a server error (5xx);
* have a documented status code and content type;
* conform to the documented response schema.

The loop covers every operation the document lists, so endpoints added later are covered too.
A stateful run then follows the document's OpenAPI links (api/links.py) from the answers that
create or list records to the operations on them, as center staff. Runs once per database
engine (the `app` fixture is parametrized over sqlite and postgresql). The budget is small
(`CONTRACT_EXAMPLES`, 12 per operation); `make fuzz` runs schemathesis's CLI with every phase
and check at 50 (tests/fuzz.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    allow_header_conformance,
]
EXAMPLES_PER_OPERATION = int(os.environ.get("CONTRACT_EXAMPLES", "12"))
#: Scenarios of the stateful run and the most calls in one.
STATEFUL_SCENARIOS = int(os.environ.get("CONTRACT_SCENARIOS", "25"))
STATEFUL_STEPS = 6

#: Operations that would end the audience's session mid-run; covered by tests/test_auth.py.
SESSION_ENDING = {("POST", "/api/v1/auth/logout")}


def _operations(app: Any) -> list[Any]:
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]


def _exercise(operation: Any, headers: Callable[[], dict[str, str]]) -> None:
    auth = headers()

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: keep the run bounded
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def run(case: Any) -> None:
        case.call_and_validate(headers=auth, checks=CHECKS)

    run()


@pytest.mark.parametrize("audience", ["anonymous", "center_staff", "resident"])
def test_every_operation_honours_its_documented_contract(
    app: Any,
    audience: str,
    staff_login: Callable[..., Any],
    resident_login: Callable[..., Any],
) -> None:
    def headers() -> dict[str, str]:
        if audience == "center_staff":
            return staff_login(role="center_staff").headers
        if audience == "resident":
            return resident_login("contract").headers
        return {}

    failures: list[str] = []
    operations = _operations(app)
    assert operations, "the OpenAPI document lists no operations"
    for operation in operations:
        if audience != "anonymous" and (operation.method.upper(), operation.path) in SESSION_ENDING:
            continue
        try:
            _exercise(operation, headers)
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}"[:2000])
    assert not failures, "\n\n".join(failures)


def test_stateful_runs_follow_the_documented_links_without_a_contract_failure(
    app: Any, staff_login: Callable[..., Any]
) -> None:
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    auth = staff_login(role="center_staff").headers
    followed: list[str] = []

    class Machine(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": auth}

        def after_call(self, response: Any, case: Any) -> None:
            followed.append(f"{case.method} {case.path}")

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            case.validate_response(response, checks=CHECKS, headers=auth)

    Machine.run(
        settings=settings(
            max_examples=STATEFUL_SCENARIOS,
            stateful_step_count=STATEFUL_STEPS,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
    )
    # The run went past single calls: some step reached a record through a link.
    assert any("{" in call for call in followed), sorted(set(followed))[:20]
