# Two commands: `make demo` runs the platform with a simulated fleet, `make test` runs every test.
# Both set themselves up from scratch: virtualenv, pinned install, Debian packages, local services.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint install system services bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip wheel
	$(PY) -m pip install -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

system:
	./scripts/ensure-system-packages.sh

services:
	./scripts/ensure-services.sh

demo: $(STAMP)
	$(PY) -m services migrate
	$(PY) -m services demo $(ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy

test: $(STAMP) system services lint
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m bench $(NAME) $(ARGS)

clean:
	rm -rf var .pytest_cache
