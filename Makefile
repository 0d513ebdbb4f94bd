# The two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(shell command -v $(PYTHON))

# uv from PATH, or bootstrapped into .tools/ with pip when missing.
UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := .tools/bin/uv
endif

VENV := .venv
BIN := $(VENV)/bin
PACKAGES := -p ecips_common -p ecips_ingest -p ecips_ledger -p ecips_publicity \
            -p ecips_coordination -p ecips_rules -p ecips

.PHONY: install browser-deps run test test-unit test-integration test-e2e test-faults k8s-check bench bench-quick lint format clean

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet uv

$(BIN)/ecips: uv.lock pyproject.toml $(wildcard libs/*/pyproject.toml services/*/pyproject.toml) | $(UV)
	$(UV) sync --all-packages --all-groups --locked
	@touch $@

install: $(BIN)/ecips

# Browser tests drive Debian's Chromium (never a downloaded browser) and need CJK fonts.
browser-deps:
	@if ! command -v chromium >/dev/null || ! fc-list 2>/dev/null | grep -qi "Noto.*CJK"; then \
		echo "installing chromium and fonts-noto-cjk"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends \
			chromium fonts-noto-cjk fontconfig >/dev/null; \
	fi

run: install  ## the whole system on its embedded default
	$(BIN)/ecips up

test: install lint k8s-check browser-deps  ## lint, manifests, unit, integration, browser, e2e, security and fault tests, quick benchmarks
	$(BIN)/pytest

test-unit: install
	$(BIN)/pytest libs/common/tests tests/unit

test-integration: install
	$(BIN)/pytest services tests/integration

test-e2e: install
	$(BIN)/pytest tests/e2e

test-faults: install  ## fault injection at full size: 50,000 records through every crash
	ECIPS_FAULT_RECORDS=50000 $(BIN)/pytest -s tests/faults

k8s-check: install  ## render and validate the Kubernetes manifests and the Dockerfile offline
	$(BIN)/python deploy/check.py

bench: install  ## benchmarks at full size (about 20 minutes); figures in bench/results/
	$(BIN)/python bench/run.py

bench-quick: install
	$(BIN)/python bench/run.py --quick

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy $(PACKAGES)
	$(BIN)/mypy deploy/check.py

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .tools .pytest_cache .mypy_cache .ruff_cache
