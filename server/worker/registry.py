"""Every scheduled job and background handler, listed in one place.

Importing a service module registers its handlers with `server.services.kernel.jobs.handler`; the
worker calls `load_job_handlers()` once so each handler is known before a job is claimed.
"""

from __future__ import annotations

import importlib

#: Modules that register job handlers.
HANDLER_MODULES: tuple[str, ...] = (
    "server.services.feeds.batches",
    "server.services.households.building",
    "server.services.dispatches.supervision",
)


def load_job_handlers() -> None:
    for module in HANDLER_MODULES:
        importlib.import_module(module)
