# Boshan e-Rescue — two commands: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 5000
export DATABASE_URL ?= sqlite:///instance/e-rescue.db
export UPLOAD_DIR ?= instance/uploads

.PHONY: run test install migrate lint bench clean

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
	@if command -v node >/dev/null 2>&1 && [ -d miniprogram_stub/test ]; then \
		node --test miniprogram_stub/test/; else echo "node tests: skipped (no node or no stub tests)"; fi

lint: install
	$(BIN)/ruff check .

bench: install
	@for f in bench/*.py; do echo "== $$f"; $(BIN)/python $$f; done

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache
