"""A real `e-rescue worker --once` in its own process, slowed down so a test can kill it
mid-import: `python -m tests.worker_child '{"db": ..., "uploads": ..., "wechat": ...}'`.

It prints `chunk N` after each committed chunk of a feed import (N rows done), then pauses.
"""

from __future__ import annotations

import json
import sys
import time


def main() -> None:
    args = json.loads(sys.argv[1])
    from server.config import Config
    from server.runtime import Runtime
    from server.services.feeds import importer
    from server.worker.loop import run_worker

    config = Config(
        env="test",
        database_url=args["db"],
        upload_dir=args["uploads"],
        wechat_api_base=args["wechat"],
        log_level="WARNING",
    )
    importer.CHUNK_ROWS = int(args["chunk"])
    store = importer.Importer._store

    def slow_store(self: importer.Importer, checked: object) -> None:
        store(self, checked)  # the chunk is committed by the job's checkpoint in here
        print(f"chunk {self.batch.rows_done}", flush=True)
        time.sleep(float(args["pause"]))

    importer.Importer._store = slow_store  # type: ignore[method-assign]
    run_worker(Runtime.build(config), once=True)


if __name__ == "__main__":
    main()
