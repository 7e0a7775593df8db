# Harpoon developer commands. Check targets never rewrite files.
#   make local   run the whole stack offline (HTTP API :3000, AWS :5000, HostedAI :8090)
#   make test    install what is needed, then run every test tier
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
SAM_VENV := .venv-sam
PY := $(VENV)/bin/python
SAM := $(SAM_VENV)/bin/sam
export AWS_DEFAULT_REGION ?= us-east-1
export SAM_CLI_TELEMETRY := 0

.PHONY: install local tenants sweep metrics test test-unit test-e2e chaos fuzz bench eval-routing calibrate-routing train-routing validate build clean
N ?= 200
FAULTS ?= 0.2
CONCURRENCY ?= 16

install: $(VENV)/.installed $(SAM_VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements-dev.txt layers/harpoon/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	touch $@

# SAM CLI pins its own boto3: it gets a virtual environment of its own.
$(SAM_VENV)/.installed: requirements-sam.txt
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/pip install --quiet -r requirements-sam.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $@

# ARGS passes options through, e.g. make local ARGS="--env WARM_IDLE_SECONDS=0 --schedule-interval 5"
local: $(VENV)/.installed
	$(PY) -m local $(ARGS)

# Tenants of the stack `make local` runs, e.g. make tenants ARGS="create acme --tier pro" (list, rotate-key,
# disable, enable, usage). A deployed stack: PYTHONPATH=layers/harpoon python -m harpoon.admin --stack NAME tenants ...
AWS_URL ?= http://127.0.0.1:5000
tenants: $(VENV)/.installed
	AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing PYTHONPATH=layers/harpoon $(PY) -m harpoon.admin \
		--endpoint-url $(AWS_URL) --table harpoon-local-TenantsTable --usage-table harpoon-local-UsageTable tenants $(ARGS)

test: install
	$(PY) -m pytest

test-unit: $(VENV)/.installed
	$(PY) -m pytest tests/unit

test-e2e: install
	$(PY) -m pytest tests/e2e

# Concurrent requests under HostedAI faults and step crashes; fails on any leak.
chaos: $(VENV)/.installed
	$(PY) -m local.chaos -n $(N) --faults $(FAULTS) --concurrency $(CONCURRENCY)

# schemathesis against a local stack it starts, from the stack's /openapi.json; fails on any 5xx.
# ARGS passes options through, e.g. make fuzz ARGS="--max-examples 800 --seed 1".
$(VENV)/.fuzz-installed: $(VENV)/.installed requirements-fuzz.txt
	$(VENV)/bin/pip install --quiet -r requirements-fuzz.txt
	touch $@

fuzz: $(VENV)/.fuzz-installed
	$(PY) -m local.fuzz $(ARGS)

# One reclaim sweep now, in the stack `make local` is running (HORIZON=s also
# takes leases due within s seconds, e.g. idle warm GPUs).
HORIZON ?= 0
API_URL ?= http://127.0.0.1:3000
sweep: $(VENV)/.installed
	$(PY) -m local.sweep --horizon $(HORIZON) --api-url $(API_URL)

# The metrics the functions of the stack `make local` runs have emitted (EMF in their logs), as a table.
metrics: $(VENV)/.installed
	$(PY) -m local.metrics --api-url $(API_URL)

bench: $(VENV)/.installed
	$(PY) -m bench

# The classifier on the held-out split of tests/data/routing (docs/routing.md).
eval-routing: $(VENV)/.installed
	$(PY) -m evals.routing --split heldout

# The threshold that sends a TARGET share of a sample to the large model.
TARGET ?= 0.3
calibrate-routing: $(VENV)/.installed
	$(PY) -m evals.routing calibrate --target-share $(TARGET) $(if $(FILE),--file $(FILE),)

# Retrain the classifier's learned correction on the tuning split (after changing the data or the rules).
# CV=5 first prints a cross-validation per L2 strength.
train-routing: $(VENV)/.installed
	$(PY) -m evals.train_router $(if $(CV),--cv $(CV),) --write

validate: $(SAM_VENV)/.installed
	$(SAM) validate --lint

build: $(SAM_VENV)/.installed
	$(SAM) build

clean:
	rm -rf .aws-sam .local
