# Chalkbox: the two commands of the README are `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

# Nothing here may reach a model hub; this machine has none.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup browser demo test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch 2.13.0 first: a bare torch requirement would pull a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[box,train,dev]'
	touch $@

setup: $(VENV)/.installed

# Debian's chromium for the page tests (playwright drives it; it never downloads a browser).
browser:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y -q chromium; }

demo: setup
	$(BIN)/chalkbox demo

test: setup browser
	$(BIN)/python -m pytest
