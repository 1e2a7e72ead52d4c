# Chalkbox: the two commands of the README are `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

# Nothing here may reach a model hub; this machine has none.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup browser demo test models

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

# The central grading teacher from the shared data (issue 3's recipe so far:
# docs/experiments.md, E3). About 6 minutes on 2 cores. Not in this recipe yet: the answer
# matcher (WikiQA) and the int8 bundle, whose 98% int8-vs-fp32 gate this teacher misses (97.6%).
DATA ?= ../shared/datasets
SCI  := $(DATA)/semeval2013-task7-2way/sciEntsBank

models: setup
	$(BIN)/chalkbox train grade --format semeval --data $(SCI)/train --out var/models/grade-teacher \
	    --epochs 3 --lr 3e-5 --max-length 128 --batch-size 16 --eval-fraction 0
	$(BIN)/chalkbox train evaluate --model var/models/grade-teacher --data $(SCI)/test-unseen-answers \
	    --format semeval
	$(BIN)/chalkbox train evaluate --model var/models/grade-teacher --data $(SCI)/test-unseen-questions \
	    --format semeval
	@echo "grading teacher: var/models/grade-teacher"
