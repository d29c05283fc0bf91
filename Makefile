# The README's two commands: `make run` and `make test`. Everything else is a helper of those.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5000

.PHONY: run test lint install

$(BIN)/duban: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install: $(BIN)/duban

## Install, load the demo county on SQLite (duban.db) and serve on http://127.0.0.1:$(PORT)
run: install
	$(BIN)/duban demo
	$(BIN)/duban serve --port $(PORT)

## Lint and run every test (SQLite by default; set DATABASE_URL=postgresql://... for PostgreSQL)
test: install
	$(BIN)/ruff check .
	$(BIN)/pytest -n 2 -p no:cacheprovider

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
