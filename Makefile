# Two commands for a newcomer: `make demo` and `make test`. Both create .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo dev test lint format clean

$(BIN)/.installed: setup.py pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

demo: $(BIN)/.installed  ## simulator -> Dagster -> local SQLite, last 7 days, then a summary
	$(BIN)/fullbay-demo

dev: $(BIN)/.installed  ## the demo, then the Dagster UI on http://127.0.0.1:3000
	$(BIN)/fullbay-demo --ui

test: $(BIN)/.installed  ## the test suite (needs PostgreSQL; FULLBAY_TEST_DATABASE_URL, default local)
	$(BIN)/pytest

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(BIN)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache
