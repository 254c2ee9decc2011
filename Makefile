# Conveyor: `make run` starts the whole system locally, `make test` runs the whole suite.
# Everything installs into .venv at the repo root; nothing needs installing by hand.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_BOOT ?= python3
VENV ?= .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed
EXTRAS ?= worker,api,serve,dev
PYTEST_ARGS ?=
CODE := shared scheduler worker api conveyor_cli migrations tests examples

.PHONY: help install run test test-fast lint typecheck bench clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(PYTHON) || $(PYTHON_BOOT) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e '.[$(EXTRAS)]'
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install Conveyor with every group (quick when nothing changed)

run: install ## run the whole system locally (SQLite, SQS on loopback, a worker, the scheduler, the API)
	$(VENV)/bin/conveyor dev

test: install tf-validate ## the whole suite: starts its own PostgreSQL and SQS endpoint
	$(VENV)/bin/pytest -m "not bench" $(PYTEST_ARGS)

test-fast: install ## unit tests only
	$(VENV)/bin/pytest tests/unit $(PYTEST_ARGS)

lint: install tf-fmt tf-checkov docker-lint ## ruff, terraform fmt, checkov, hadolint
	$(VENV)/bin/ruff check $(CODE)
	$(VENV)/bin/ruff format --check $(CODE)

typecheck: install ## mypy --strict on the application packages
	$(VENV)/bin/mypy

bench: install ## benchmarks (tests/bench), figures printed and written to .conveyor/bench/
	$(VENV)/bin/pytest tests/bench -m bench -s -p no:randomly $(PYTEST_ARGS)

clean: ## remove the venv, caches and local state
	rm -rf $(VENV) .conveyor .pytest_cache .mypy_cache .ruff_cache .hypothesis .tfcli .checkov-venv
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
	rm -rf *.egg-info

include terraform/terraform.mk
