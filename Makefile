# `make run` serves the chat server; `make test` runs the whole suite. Both set everything up.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

TEST_ENV := SECRET_KEY=test-secret-key-not-for-production-0123456789abcdef \
	POSTGRESQL_URL=$${TEST_POSTGRESQL_URL:-postgresql://postgres@127.0.0.1:5432/chat} \
	REDIS_URL=$${TEST_REDIS_URL:-redis://127.0.0.1:6379/9} \
	FAST_PASSWORD_HASHER=true \
	DB_POOL=false \
	HTTPS=false

.PHONY: run test lint typecheck check services venv clean bench

$(STAMP): requirements.txt requirements-dev.txt
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	./scripts/run_server.sh

services:
	./scripts/ensure_services.sh

test: $(STAMP) services
	$(TEST_ENV) $(VENV)/bin/pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(TEST_ENV) $(VENV)/bin/mypy .

check: lint typecheck test

bench: $(STAMP) services
	$(VENV)/bin/python bench/ws_bench.py

clean:
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache

.PHONY: deploy-check
# The Docker deployment without a Docker engine: compose config, hadolint, the Caddyfile (deploy/check.sh).
deploy-check: $(STAMP)
	./deploy/check.sh
