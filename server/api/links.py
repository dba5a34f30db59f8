"""OpenAPI links: which answer gives the id another operation's path needs.

A client (and schemathesis's stateful phase) reads them as "after POST /leads, the lead's id
at `#/lead/id` opens GET /leads/{lead_id}, its merge, its slips…". They are declared once
here, by the path parameter that names a kind of record, and written into every operation that
takes that parameter; `tests/test_openapi_links.py` checks that every pointer exists in the
producer's documented answer.
"""

from __future__ import annotations

import re
from typing import Any

#: path parameter → the operations whose successful answer carries such an id, and where.
#: (method, path, JSON pointer into the answer, path prefix the consumers must start with)
PRODUCERS: dict[str, list[tuple[str, str, str, str]]] = {
    "lead_id": [
        ("post", "/api/v1/leads", "/lead/id", "/api/v1/leads/"),
        ("get", "/api/v1/leads", "/items/0/id", "/api/v1/leads/"),
        ("get", "/api/v1/dispatches/{dispatch_id}", "/lead_id", "/api/v1/leads/"),
    ],
    "application_id": [
        ("post", "/api/v1/applications", "/id", "/api/v1/applications/"),
        ("post", "/api/v1/applications/intake", "/id", "/api/v1/applications/"),
        ("get", "/api/v1/applications", "/items/0/id", "/api/v1/applications/"),
        ("get", "/api/v1/helper/filings", "/items/0/id", "/api/v1/applications/"),
    ],
    "dispatch_id": [
        ("post", "/api/v1/leads/{lead_id}/dispatches", "/id", "/api/v1/dispatches/"),
        ("get", "/api/v1/dispatches", "/items/0/id", "/api/v1/dispatches/"),
    ],
    "visit_id": [
        ("post", "/api/v1/visits", "/id", "/api/v1/visits/"),
        ("get", "/api/v1/visits", "/items/0/id", "/api/v1/visits/"),
    ],
    "photo_id": [
        ("post", "/api/v1/uploads", "/id", "/api/v1/uploads/"),
        (
            "post",
            "/api/v1/dispatches/{dispatch_id}/attachments",
            "/id",
            "/api/v1/dispatches/",
        ),
    ],
    "contact_id": [
        ("post", "/api/v1/public/contacts", "/id", "/api/v1/public/contacts/"),
        ("get", "/api/v1/public/contacts", "/0/id", "/api/v1/public/contacts/"),
    ],
    "invitation_id": [
        ("post", "/api/v1/helpers/invitations", "/id", "/api/v1/helpers/invitations/"),
        ("get", "/api/v1/helpers/invitations", "/0/id", "/api/v1/helpers/invitations/"),
    ],
    "user_id": [
        ("post", "/api/v1/staff", "/id", "/api/v1/staff/"),
        ("get", "/api/v1/staff", "/0/id", "/api/v1/staff/"),
        ("get", "/api/v1/helpers", "/0/id", "/api/v1/helpers/"),
    ],
    "batch_id": [
        ("post", "/api/v1/feeds/{code}/batches", "/id", "/api/v1/feeds/"),
        ("get", "/api/v1/feeds/{code}/batches", "/items/0/id", "/api/v1/feeds/"),
    ],
    "task_id": [("get", "/api/v1/inform-tasks", "/items/0/id", "/api/v1/inform-tasks/")],
    "message_id": [("get", "/api/v1/messages", "/items/0/id", "/api/v1/messages/")],
    "entry_id": [("get", "/api/v1/audit", "/items/0/id", "/api/v1/audit/")],
}
_METHODS = ("get", "post", "put", "patch", "delete")


def operation_ref(method: str, path: str) -> str:
    escaped = path.replace("~", "~0").replace("/", "~1")
    return f"#/paths/{escaped}/{method}"


def _params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")]


def add_links(paths: dict[str, dict[str, Any]]) -> int:
    """Write the links into the spec's `paths` (apispec's, before it is served); how many."""
    added = 0
    for param, producers in PRODUCERS.items():
        for method, path, pointer, prefix in producers:
            operation = paths.get(path, {}).get(method)
            if operation is None:
                continue
            response = _success_response(operation)
            if response is None:
                continue
            for target_path, item in paths.items():
                if not target_path.startswith(prefix) or param not in _params(target_path):
                    continue
                for target_method in _METHODS:
                    if target_method not in item or (target_path, target_method) == (path, method):
                        continue
                    parameters = {param: f"$response.body#{pointer}"}
                    for shared in _params(path):  # e.g. the feed's {code} of its batch
                        if shared in _params(target_path) and shared != param:
                            parameters[shared] = f"$request.path.{shared}"
                    name = _link_name(target_method, target_path)
                    response.setdefault("links", {})[name] = {
                        "operationRef": operation_ref(target_method, target_path),
                        "parameters": parameters,
                    }
                    added += 1
    return added


def _link_name(method: str, path: str) -> str:
    """`get_leads_lead_id`: OpenAPI link names allow letters, digits, `.`, `-` and `_`."""
    words = [w for w in re.split(r"[^A-Za-z0-9]+", path.removeprefix("/api/v1")) if w]
    return "_".join([method, *words])


def _success_response(operation: dict[str, Any]) -> dict[str, Any] | None:
    for code in ("201", "200", "202", 201, 200, 202):
        response = operation.get("responses", {}).get(code)
        if isinstance(response, dict):
            return response
    return None
