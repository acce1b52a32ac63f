# The user interface of the project. Every target bootstraps what it needs, idempotently.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# checkov gets its own venv: its ~100 pins must never constrain the app's.
CHECKOV_VENV := .venv-checkov
LOCAL_AWS_PORT ?= 4566

# jsii warns that Node 20 is end-of-life on every process start; silence it for the Node major we run.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CHECKPOINT_DISABLE := 1
export LOCAL_AWS_PORT

.DEFAULT_GOAL := help
.PHONY: help deps synth scan test test-fast bench diff openapi diagram deploy-local plan-local destroy-local clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.installed: requirements.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -c constraints.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(CHECKOV_VENV)/.installed: tools/checkov-requirements.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r tools/checkov-requirements.txt
	touch $@

deps: $(VENV)/.installed node_modules/.installed ## Install pinned Python and Node dependencies

synth: deps ## Synthesize every stack into cdktf.out/ with the cdktf CLI
	npx cdktf synth

# Local targets apply what `make synth` wrote; synthesize first only when there is nothing yet.
cdktf.out/manifest.json:
	$(MAKE) synth

scan: $(VENV)/.installed $(CHECKOV_VENV)/.installed cdktf.out/manifest.json ## checkov over every synthesized stack (0 failed, skips in .checkov.yaml)
	$(PY) -m tools.scan

test: $(VENV)/.installed $(CHECKOV_VENV)/.installed ## Run every test (unit, Lambda, security scan, terraform validate, end to end)
	$(PY) -m pytest

test-fast: $(VENV)/.installed $(CHECKOV_VENV)/.installed ## Run the tests that need no emulator
	$(PY) -m pytest -m "not e2e"

bench: deps cdktf.out/manifest.json ## Measure synth, import and local-deploy times; writes bench/results.md
	$(PY) -m tools.bench

BASE ?= main
diff: $(VENV)/.installed ## Markdown summary of what the working tree changes against BASE (default main)
	$(PY) -m tools.synth_diff --base $(BASE)

openapi: $(VENV)/.installed ## Write docs/openapi.json from the API contract
	$(PY) -m tools.openapi

diagram: synth ## Render docs/architecture.png from a fresh synth (needs Graphviz: apt-get install graphviz)
	$(PY) -m tools.diagram

deploy-local: $(VENV)/.installed cdktf.out/manifest.json ## Deploy every stack to a local moto emulator on 127.0.0.1:$(LOCAL_AWS_PORT)
	$(PY) -m tools.local deploy

plan-local: $(VENV)/.installed cdktf.out/manifest.json ## terraform plan every local stack (exit 0: no changes, 2: changes)
	$(PY) -m tools.local plan

destroy-local: $(VENV)/.installed cdktf.out/manifest.json ## Destroy every local stack and stop the emulator
	$(PY) -m tools.local destroy

clean: ## Remove build outputs (keeps dependencies and state)
	rm -rf cdktf.out .build
