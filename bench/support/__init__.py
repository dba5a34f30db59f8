"""What the benchmarks share, one module per concern: `people` (synthetic names and ID numbers),
`databases` (a fresh database per engine, bulk loading), `leads` (the synthetic lead queue and
the app with staff logged in), `processes` (gunicorn, the fake WeChat server, free ports),
`http_load` (wrk or a threaded client, percentiles) and `memory` (peak resident memory).

Nothing is imported here: bench/ingest.py measures the memory of processes that import
`bench.support.memory`, so each module imports only what it needs, SQLAlchemy and the server
inside the functions that use them.
"""
