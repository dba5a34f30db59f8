"""Department data feeds (部门信息共享): the registry of the twelve feeds, reading and normalising
their files, comparing each person with the roster and the open leads, and feed punctuality.

Modules: `registry` (what each feed is), `normalise` (pure cell rules), `sheets` and
`sheet_child` (opening an untrusted spreadsheet in a limited child process), `reader` (files,
headers, small tables), `importer` (driving an import in chunks) with `rows` (validating rows) and
`comparison` (数据比对, set-based), `bulk` and `namekeys` (its hot paths), `settings`,
`punctuality`, `batches` (upload, worker job, CLI import, errors.xlsx).
"""
