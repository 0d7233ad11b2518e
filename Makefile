# Two entry points do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
NEWSFEED := $(BIN)/newsfeed

.PHONY: setup system-packages broker broker-stop demo test soak lint typecheck unit integration e2e clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

system-packages:
	bash deploy/install-system-packages.sh

setup: system-packages $(VENV)/.installed

broker: setup
	$(NEWSFEED) broker start

broker-stop:
	$(NEWSFEED) broker stop

demo: broker
	$(NEWSFEED) demo --output .state/demo-output.jsonl

lint: setup
	$(BIN)/ruff check pipeline tests bench
	$(BIN)/ruff format --check pipeline tests bench

typecheck: setup
	$(BIN)/mypy

unit: setup
	$(BIN)/pytest tests/unit

integration: broker
	$(BIN)/pytest tests/integration

e2e: broker
	$(BIN)/pytest tests/e2e

test: lint typecheck broker
	$(BIN)/pytest

# Minutes of steady load, restart halfway; figures in .state/artifacts/soak.json. Not part of `test`.
SOAK_MINUTES ?= 15
soak: broker
	$(BIN)/pytest -m soak tests/soak -p no:cacheprovider --soak-minutes $(SOAK_MINUTES)

clean:
	-$(NEWSFEED) broker stop
	rm -rf .state .mypy_cache .ruff_cache .pytest_cache
