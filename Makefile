# The single entry point: `make test` is what CI runs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# python3.12 is the Lambda runtime and the venv's interpreter. Found through pyenv, then PATH.
PYTHON312 := $(or $(lastword $(sort $(wildcard $(shell pyenv root 2>/dev/null)/versions/3.12.*/bin/python3.12))),$(shell command -v python3.12 2>/dev/null))
VENV := .venv
SAM_VENV := .venv-sam
PY := $(VENV)/bin/python
SAM := $(SAM_VENV)/bin/sam
SAM_CLI_VERSION := 1.170.0
STAMP := $(VENV)/.installed
WEB_STAMP := web/node_modules/.installed
export SAM_CLI_TELEMETRY := 0

define need_python312
	@if [ -z "$(PYTHON312)" ]; then \
	  echo "error: python3.12 not found (looked in \$$(pyenv root)/versions/3.12.*/bin and PATH)."; \
	  echo "       Install it, e.g. 'pyenv install 3.12', then run make again."; exit 1; fi
endef

.PHONY: help
help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(need_python312)
	@[ -x $(PY) ] || $(PYTHON312) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	@touch $@

$(SAM):
	$(need_python312)
	$(PYTHON312) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check aws-sam-cli==$(SAM_CLI_VERSION)

# Swagger UI and ReDoc for /docs and /redoc, and prettier: pinned in web/package-lock.json.
$(WEB_STAMP): web/package.json web/package-lock.json
	@command -v npm >/dev/null || { echo "error: npm not found: the docs' assets (web/package.json) need Node.js and npm."; exit 1; }
	cd web && npm ci --ignore-scripts
	@touch $@

.PHONY: venv
venv: $(STAMP)  ## Create the venv and install ordo with its dev tools

.PHONY: dev
dev: $(STAMP) $(WEB_STAMP)  ## Run template.yaml and the console locally without Docker (ORDO_PORT, default 3000)
	@$(PY) -m infra.local

.PHONY: openapi
openapi: $(STAMP)  ## Rewrite infra/openapi.json, the merged OpenAPI of every API function
	$(PY) -m infra.local.openapi

.PHONY: lint
lint: $(STAMP) $(WEB_STAMP)  ## ruff, mypy, cfn-lint, and prettier for the console
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	web/node_modules/.bin/prettier --check --log-level warn web/app web/style.css web/index.html
	$(VENV)/bin/mypy layers/core functions infra tests bench client
	$(VENV)/bin/cfn-lint template.yaml

# The deployed layer is arm64 (.aws-sam/build); the artifact tests and bench.coldstart run the
# same layer built for this machine's architecture (x86_64 or aarch64) in .aws-sam/host.
# `make -j2 build` builds the two at once.
HOST_LAYER := .aws-sam/host/CoreLayer
HOST_PLATFORM := manylinux2014_$(patsubst arm64,aarch64,$(shell uname -m))

.PHONY: build build-sam build-host
build: build-sam build-host  ## sam build (arm64), and the same layer for this machine in .aws-sam/host

build-sam: $(SAM)
	$(need_python312)
	PATH="$(dir $(PYTHON312)):$$PATH" $(SAM) build --template template.yaml

build-host:
	$(need_python312)
	rm -rf $(HOST_LAYER)
	$(MAKE) --no-print-directory -C layers/core build-CoreLayer PYTHON=$(PYTHON312) \
	  ARTIFACTS_DIR="$(CURDIR)/$(HOST_LAYER)" PLATFORM=$(HOST_PLATFORM)

# One pytest worker more than the cores: the end-to-end tests wait on their local clouds'
# processes much of the time, and a third worker on two cores fills that wait (README: tiers).
PYTEST_WORKERS ?= $(shell echo $$(( $$(nproc) + 1 )))

.PHONY: test
test: lint build $(WEB_STAMP)  ## Lint, build, then run every test, a file per worker (browser tests need chromium)
	$(VENV)/bin/pytest -n $(PYTEST_WORKERS) --dist loadfile

.PHONY: screenshots
screenshots: $(STAMP) $(WEB_STAMP)  ## Rewrite docs/screens/*.png from the console's browser tests
	ORDO_SCREENSHOTS=docs/screens $(VENV)/bin/pytest -q tests/e2e/test_console.py

.PHONY: bench
bench: $(STAMP) build  ## Cold start, the local cloud's overheads and start-up, recovery, the catalog; then every headline figure against its target
	@status=0; for module in coldstart localcloud startup recovery catalog; do \
	  echo "== python -m bench.$$module"; $(PY) -m bench.$$module || status=1; done; \
	$(PY) -m bench.figures; exit $$status

# The stack `make deploy-console` publishes to: samconfig.toml's stack_name. REGION is optional.
STACK ?= ordo

.PHONY: deploy
deploy: build  ## sam deploy (guided the first time), then publish the console
	$(SAM) deploy --guided
	$(MAKE) deploy-console

.PHONY: deploy-console
deploy-console: $(STAMP)  ## Upload web/ to the console bucket and write config.json (STACK=ordo)
	$(PY) -m infra.console --stack-name $(STACK) $(if $(REGION),--region $(REGION))

.PHONY: clean
clean:  ## Remove build output and caches (keeps the venvs)
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache
