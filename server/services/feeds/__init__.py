"""Department data feeds (部门信息共享): the registry of the twelve feeds, reading and normalising
their files, comparing each person with the roster and the open leads, and feed punctuality.

Modules: `registry` (what each feed is), `normalise` (pure cell rules), `reader` (files and
headers), `importer` (the set-based comparison), `settings`, `punctuality`, `batches` (upload,
worker job, CLI import, errors.xlsx).
"""
