# Two commands matter: `make demo` (set up, then serve the demo) and `make test`
# (set up, then run every test). Both work on a fresh clone.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
PG_URL ?= postgres://postgres@127.0.0.1:5432/beacon
REDIS_TEST_URL ?= redis://127.0.0.1:6379/0

.PHONY: demo test test-unit test-postgres test-js lint services browser-deps bench bench-quick clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[test,bench]"
	touch $@

demo: $(BIN)/.installed
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py demo_users
	@echo "Beacon demo on http://127.0.0.1:$(PORT)/ — sign in as alice, bob or carol, password beacon-demo"
	$(BIN)/daphne -b 127.0.0.1 -p $(PORT) demo.asgi:application

# Services the tests need: PostgreSQL and Redis answering, Chromium and Nginx installed.
services:
	bash .ci/services.sh

test: $(BIN)/.installed services lint test-unit test-postgres test-js

lint: $(BIN)/.installed
	$(BIN)/ruff check src demo tests bench

# Embedded mode: SQLite, in-memory layer (tests that need Redis start their own servers).
test-unit: $(BIN)/.installed
	$(BIN)/pytest -q -m "not postgres" -p no:cacheprovider

# The same code on PostgreSQL and Redis (the pubsub layer), browser tests aside.
test-postgres: $(BIN)/.installed
	DATABASE_URL=$(PG_URL) REDIS_URL=$(REDIS_TEST_URL) $(BIN)/pytest -q -m "not browser" -p no:cacheprovider

test-js:
	@if [ -d tests/js ]; then node --test tests/js/; fi

bench: $(BIN)/.installed
	$(BIN)/python -m bench.run

bench-quick: $(BIN)/.installed
	$(BIN)/python -m bench.run --quick

clean:
	rm -rf $(VENV) db.sqlite3* test-db.sqlite3* test-output staticfiles
