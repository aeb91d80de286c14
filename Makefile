# Two commands matter: `make demo` (set up, then serve the demo) and `make test`
# (set up, then run every test). Both work on a fresh clone.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
PG_URL ?= postgres://postgres@127.0.0.1:5432/beacon
REDIS_TEST_URL ?= redis://127.0.0.1:6379/0

.PHONY: demo test test-unit test-postgres test-js js-deps vendor-js lint services browser-deps bench bench-quick clean

# What the demo needs (all runtime extras), then what the tests and benchmarks add.
$(BIN)/.runtime: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[all]"
	touch $@

$(BIN)/.installed: $(BIN)/.runtime
	$(BIN)/pip install -q -e ".[test,bench]"
	touch $@

demo: $(BIN)/.runtime
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py demo_users
	@echo "Beacon demo on http://127.0.0.1:$(PORT)/ — sign in as alice, bob or carol, password beacon-demo"
	$(BIN)/daphne -b 127.0.0.1 -p $(PORT) demo.asgi:application

# Services the tests need: PostgreSQL and Redis answering, Chromium and Nginx installed.
services:
	bash .ci/services.sh

test: $(BIN)/.installed services js-deps lint test-unit test-postgres test-js test-django6

# The real Pusher clients the tests drive (pusher-js, Laravel Echo), pinned by the lock file.
PUSHER_JS := tests/js/pusher
$(PUSHER_JS)/node_modules/.installed: $(PUSHER_JS)/package.json $(PUSHER_JS)/package-lock.json
	npm ci --prefix $(PUSHER_JS) --no-audit --no-fund
	touch $@

js-deps: $(PUSHER_JS)/node_modules/.installed

# The demo serves the packages' browser builds as static files: copy them after an upgrade.
VENDOR := demo/static/demo/vendor
vendor-js: js-deps
	cp $(PUSHER_JS)/node_modules/pusher-js/dist/web/pusher.min.js $(VENDOR)/
	cp $(PUSHER_JS)/node_modules/pusher-js/dist/web/pusher.min.js.LICENSE.txt $(VENDOR)/
	cp $(PUSHER_JS)/node_modules/pusher-js/LICENCE $(VENDOR)/pusher-js.LICENCE
	cp $(PUSHER_JS)/node_modules/laravel-echo/dist/echo.iife.js $(VENDOR)/
	cp $(PUSHER_JS)/node_modules/laravel-echo/LICENSE.md $(VENDOR)/laravel-echo.LICENSE.md

# ruff; mypy over src/ (strictness in pyproject.toml); the import contract (the layers
# in pyproject.toml's [tool.importlinter]: no module imports a higher layer, no cycles).
lint: $(BIN)/.installed
	$(BIN)/ruff check src demo tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

# Embedded mode: SQLite, in-memory layer (tests that need Redis start their own servers).
test-unit: $(BIN)/.installed js-deps
	$(BIN)/pytest -q -m "not postgres" -p no:cacheprovider

# The same code on PostgreSQL and Redis (the pubsub layer), browser tests aside.
test-postgres: $(BIN)/.installed js-deps
	DATABASE_URL=$(PG_URL) REDIS_URL=$(REDIS_TEST_URL) $(BIN)/pytest -q -m "not browser" -p no:cacheprovider

# Django 6.x needs Python >= 3.12: the core tests again in a second virtualenv.
PYTHON312 ?= $(shell ls $(HOME)/.pyenv/versions/3.1[2-9]*/bin/python3 2>/dev/null | head -n1 || command -v python3.12)
VENV6 := .venv-django6
$(VENV6)/.installed: pyproject.toml
	$(PYTHON312) -m venv $(VENV6)
	$(VENV6)/bin/pip install -q --upgrade pip
	$(VENV6)/bin/pip install -q -e ".[test]" "Django>=6,<7"
	touch $@

test-django6:
	@if [ -z "$(PYTHON312)" ]; then echo "test-django6: no Python >= 3.12 found, skipped"; else \
	  $(MAKE) $(VENV6)/.installed && $(VENV6)/bin/python -m django --version && \
	  SQLITE_TEST_NAME=$(CURDIR)/test-db-django6.sqlite3 $(VENV6)/bin/pytest -q -p no:cacheprovider \
	    tests/test_protocol.py tests/test_sequencing.py tests/test_streams.py tests/test_publishing.py \
	    tests/doors/test_websocket.py tests/processes/test_processes.py; fi

test-js:
	@if [ -d tests/js ]; then node --test tests/js/; fi

bench: $(BIN)/.installed
	$(BIN)/python -m bench.run

bench-quick: $(BIN)/.installed
	$(BIN)/python -m bench.run --quick

clean:
	rm -rf $(VENV) $(VENV6) db.sqlite3* test-db.sqlite3* test-output staticfiles $(PUSHER_JS)/node_modules
