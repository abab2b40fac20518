# The two set-up commands are `make run` and `make test`; both install first.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# Debian packages the tests and benchmarks drive for real: the browser, the SMS gateway with its
# fake SMSC, the HTTP load generators (wrk; ab for Kannel's ceiling), zbar to read the QR codes
# the tests make, and the converters that let it read them from SVG and PDF.
APT_PACKAGES := chromium kannel kannel-extras wrk apache2-utils espeak-ng sox zbar-tools libzbar0 \
	librsvg2-bin poppler-utils
HOST ?= 127.0.0.1
PORT ?= 8000
ARGS ?=

.PHONY: install system-deps run test lint e2e i18n clean

install: $(VENV)/.installed system-deps

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $@

system-deps:
	@missing=""; \
	for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else \
	    echo "Missing Debian packages (tests that need them will be skipped):$$missing"; \
	  fi; \
	fi

run: install
	$(BIN)/mobimart migrate
	$(BIN)/mobimart demo
	$(BIN)/mobimart serve --host $(HOST) --port $(PORT)

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -n auto --dist loadscope $(ARGS)

e2e: install
	$(BIN)/python -m pytest tests/e2e $(ARGS)

bench-%: install
	$(BIN)/python -m bench.$(subst -,_,$*) $(ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

i18n: install
	$(BIN)/pybabel extract -F babel.cfg -k _ -k gettext_ -o src/mobimart/locale/messages.pot .
	$(BIN)/pybabel update -i src/mobimart/locale/messages.pot -d src/mobimart/locale -l zh_Hans
