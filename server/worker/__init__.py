"""Background work, run by `e-rescue worker`: the job runner (`jobs`), the handlers it knows
(`registry`) and the outbox delivery loop (`outbox`). It calls the services; nothing in the
services imports it.
"""
