"""Clearly synthetic demo data for `make run`, the benchmarks and the tests: people,
applications, casework and slips (`seed`), households and the social forces (`social`).

It is not a rule of the service, so it lives outside `server/services`.
"""
