# The README's two commands: `make run` and `make test`. Everything else is a helper of those.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5000
# Debian packages the tests need: Chromium for Playwright, a CJK font for screenshots and
# documents, LibreOffice Writer to check .docx layout (rendered to PDF).
SYSTEM_PACKAGES := chromium fonts-wqy-microhei libreoffice-writer

.PHONY: run test check lint install system-deps

$(BIN)/duban: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

node_modules/.package-lock.json: package-lock.json
	npm ci --no-audit --no-fund
	touch $@

install: $(BIN)/duban node_modules/.package-lock.json

system-deps:
	@if [ ! -x /usr/bin/chromium ] || ! fc-list :lang=zh | grep -q . || ! command -v soffice >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && apt-get install -y -q $(SYSTEM_PACKAGES); \
	  else echo "请先安装：sudo apt-get install $(SYSTEM_PACKAGES)"; exit 1; fi; fi

## Install, load the demo county on SQLite (duban.db) and serve on http://127.0.0.1:$(PORT)
run: install
	$(BIN)/duban demo
	$(BIN)/duban serve --port $(PORT)

## Lint and run every test (SQLite by default; set DATABASE_URL=postgresql://... for PostgreSQL)
test: install system-deps
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/pytest -n 2 -p no:cacheprovider

## The fast inner loop: lint, import rules, types, and every test but the browser and slow ones
check: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/pytest -n auto -p no:cacheprovider -m "not slow and not browser"
