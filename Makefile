# Boshan e-Rescue — two commands: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 5000
export DATABASE_URL ?= sqlite:///instance/e-rescue.db
export UPLOAD_DIR ?= instance/uploads

.PHONY: run test install migrate lint bench clean node-test fuzz soak

$(BIN)/e-rescue: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

install: $(BIN)/e-rescue

migrate: install
	@mkdir -p instance/uploads
	$(BIN)/e-rescue db upgrade

run: migrate
	@$(BIN)/e-rescue seed-demo
	@echo "Staff console: http://127.0.0.1:$(PORT)/console/  (the demo logins above)"
	@echo "API docs: http://127.0.0.1:$(PORT)/api/docs"
	PORT=$(PORT) $(BIN)/e-rescue serve --dev --port $(PORT)

test: install
	@$(BIN)/python -m tests.dbcheck
	@if [ -x "$${CHROMIUM:-/usr/bin/chromium}" ] && $(BIN)/python -c "import playwright" 2>/dev/null; then \
		echo "browser tests: chromium at $${CHROMIUM:-/usr/bin/chromium}"; else \
		echo "browser tests: SKIPPED (no chromium or no playwright; REQUIRE_BROWSER=1 makes this a failure)"; fi
	$(BIN)/pytest $(PYTEST_ARGS)
	@$(MAKE) --no-print-directory node-test

# The mini-program's tests: its dev dependencies (WeChat's compilers, miniprogram-simulate, the
# DevTools' JSON schemas) installed from its lockfile, again only when the lockfile changed.
# Without npm they are skipped with a message, except under CI (CI=true), where that fails.
node-test:
	@if command -v npm >/dev/null 2>&1 && command -v node >/dev/null 2>&1; then \
		if [ ! miniprogram_stub/node_modules/.package-lock.json -nt miniprogram_stub/package-lock.json ]; then \
			(cd miniprogram_stub && npm ci --no-audit --no-fund --loglevel=error) || exit 1; fi; \
		node --test miniprogram_stub/test/; \
	elif [ -n "$$CI" ]; then echo "node tests: node and npm are required under CI"; exit 1; \
	else echo "node tests: skipped (install Node 20 and npm to run the mini-program's tests)"; fi

# schemathesis's CLI against the live app on demo data: every phase (examples, coverage,
# fuzzing, stateful links) and every check, as center staff and as a resident
# (tests/fuzz.py). `make test` runs a bounded version (tests/test_api_contract.py).
FUZZ_EXAMPLES ?= 50
fuzz: install
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m tests.fuzz $(FUZZ_ARGS)

lint: install
	$(BIN)/ruff check .

bench: install
	@for f in $(filter-out bench/soak.py,$(wildcard bench/*.py)); do echo "== $$f"; $(BIN)/python $$f; done

# The soak test (bench/soak.py, README "Soak test"): PostgreSQL, gunicorn with 4 app processes,
# 3 workers, mixed load for SOAK_SECONDS with workers killed mid-run; exits 1 on a failed
# check. Minutes long, so never part of `make test`. SOAK_PG_URL names the server.
SOAK_SECONDS ?= 90
soak: install
	$(BIN)/python bench/soak.py --seconds $(SOAK_SECONDS) $(SOAK_ARGS)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache
