# Two commands on a fresh clone: `make demo` and `make test`. Both install what is missing first.
VENV   := .venv
PY     := $(VENV)/bin/python
# Re-run the set-up only when what it installs changed.
STAMP  := $(VENV)/.installed-$(shell cat requirements/*.txt setup.py pyproject.toml scripts/setup.sh | sha1sum | cut -c1-12)
PYTEST_ARGS ?=

export CLONEDESK_DATA_DIR ?= $(CURDIR)/.clonedesk

.PHONY: setup demo test test-fast protos bench clean readme-settings

setup: $(STAMP)

$(STAMP):
	bash scripts/setup.sh
	rm -f $(VENV)/.installed-* && touch $@

demo: setup
	$(VENV)/bin/clonedesk demo

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

protos: setup
	$(PY) -m clonedesk.core.protogen

bench: setup
	for b in bench/*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .clonedesk .pytest_cache

readme-settings: setup
	$(PY) scripts/readme_settings.py
