# The two commands of the README: `make app` launches the app, `make test` runs the tests.
# Each creates .venv and installs what it needs on a fresh machine first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: app test bench chromium

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt -e .
	touch $@

app: $(VENV)/.installed
	$(PY) app.py

# The browser test drives Debian's Chromium (Playwright cannot download its own here).
chromium:
	@command -v chromium >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

test: $(VENV)/.installed chromium
	$(PY) -m pytest -q

bench: $(VENV)/.installed
	$(PY) benchmarks/inference.py
