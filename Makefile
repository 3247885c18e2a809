# The two commands: `make run` and `make test`. Both do all set-up themselves.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
FLASK  := $(BIN)/flask
export FLASK_APP := wsgi.py

PO_FILES := $(wildcard portal/translations/*/LC_MESSAGES/messages.po)
MO_FILES := $(PO_FILES:.po=.mo)

.PHONY: run test test-sqlite test-postgres bench setup system-deps test-system-deps assets translations db lint format extract-messages clean

run: setup db
	@$(FLASK) demo seed --if-empty
	@echo "Portal on http://127.0.0.1:5000 (scheduler running beside it; Ctrl+C stops both)"
	@trap 'kill 0' INT TERM EXIT; \
	  $(FLASK) scheduler run & \
	  $(FLASK) run --host 127.0.0.1 --port 5000 --no-reload

test: setup test-system-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(MAKE) --no-print-directory test-sqlite
	@if [ -n "$$TEST_DATABASE_URL" ]; then $(MAKE) --no-print-directory test-postgres; \
	  else echo "TEST_DATABASE_URL is not set: skipping the PostgreSQL run."; fi

test-sqlite:
	@echo "== test suite on SQLite"
	env -u TEST_DATABASE_URL $(BIN)/pytest -q

test-postgres:
	@echo "== test suite on PostgreSQL ($$TEST_DATABASE_URL)"
	$(BIN)/pytest -q

bench: setup db
	$(BIN)/python -m bench

setup: system-deps $(VENV)/.installed static/vendor/.installed $(MO_FILES)

# System packages, installed only when running as root and missing: Pango and a CJK font
# (PDFs with Chinese text), and HarfBuzz's subsetting library (without it WeasyPrint subsets the
# CJK font in Python, seconds per PDF).
system-deps:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  missing=""; \
	  for p in libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-wqy-microhei; do \
	    dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then echo "Installing$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi; \
	fi

# Browser tests drive Debian's Chromium (no browser download from the internet).
test-system-deps:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "Installing chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	fi

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt
	@touch $@

# Front-end assets from the npm registry at pinned versions, copied where Flask serves them.
static/vendor/.installed: package.json
	npm install --no-package-lock --no-audit --no-fund --loglevel=error
	mkdir -p static/vendor
	cp node_modules/htmx.org/dist/htmx.min.js node_modules/@picocss/pico/css/pico.min.css static/vendor/
	@touch $@

%.mo: %.po $(VENV)/.installed
	$(BIN)/pybabel compile -f -i $< -o $@ >/dev/null

translations: $(MO_FILES)

db: setup
	@$(FLASK) db upgrade

lint:
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format:
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

# Refresh the catalogs after changing user-facing text, then translate the new entries. One width
# (100, as the catalogs are written) so that a refresh changes only what changed.
extract-messages: $(VENV)/.installed
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext --no-location --sort-output -w 100 -o portal/translations/messages.pot .
	$(BIN)/pybabel update -i portal/translations/messages.pot -d portal/translations --no-fuzzy-matching --ignore-obsolete -w 100

clean:
	rm -rf $(VENV) node_modules static/vendor $(MO_FILES)
