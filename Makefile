# The two commands of the README: `make run` and `make test`.
# Everything installs into .venv from the pinned lock files (DESIGN §7).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.run-installed
DEV_STAMP := $(VENV)/.dev-installed

.PHONY: run test lint bench lock openapi clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(RUN_STAMP): requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $@

$(DEV_STAMP): requirements-dev.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -r requirements-dev.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $@ $(RUN_STAMP)

# Serve the API on http://$(HOST):$(PORT) (default 127.0.0.1:8000; `make run PORT=8001`) with the
# sample data, SQLite and the in-process webhook worker; webhooks may reach only this machine.
# IMI_PUBLIC_BASE_URL (links, token issuer and audience) follows: PUBLIC_BASE_URL=… overrides it.
HOST ?= 127.0.0.1
PORT ?= 8000
PUBLIC_BASE_URL ?= http://$(HOST):$(PORT)
run: $(RUN_STAMP)
	IMI_LOAD_SAMPLE=true IMI_WEBHOOK_TARGETS=loopback IMI_PUBLIC_BASE_URL=$(PUBLIC_BASE_URL) \
	  $(BIN)/imi-api serve --host $(HOST) --port $(PORT)

lint: $(DEV_STAMP)
	$(BIN)/ruff check service tests bench examples
	$(BIN)/mypy service bench

# The whole suite: lint and type gates, the OpenAPI document, then pytest.
# PostgreSQL cases run when IMI_TEST_POSTGRES_URL is set (.ci/run sets it).
test: lint
	$(BIN)/imi-api openapi --check
	$(BIN)/pytest

# Benchmarks print ratios against baselines measured in the same run (bench/).
bench: $(DEV_STAMP)
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python -m bench

openapi: $(DEV_STAMP)
	$(BIN)/imi-api openapi

# Regenerate the lock files from pyproject.toml (needs the registry).
lock: $(DEV_STAMP)
	$(BIN)/pip-compile -q --strip-extras -o requirements.lock pyproject.toml
	$(BIN)/pip-compile -q --strip-extras --extra dev -o requirements-dev.lock pyproject.toml

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
