# Chalkbox: the two commands of the README are `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

# Nothing here may reach a model hub; this machine has none.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup browser demo test models models-beetle

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

# The models from the shared data (issues 3 and 4), on this 2-core CPU machine, 38 min
# (measured 2026-12-07): the grading teacher (SciEntsBank, docs/experiments.md E3 recipe on
# all the cleaned training answers), the answer matcher teacher (WikiQA, 3 epochs: E14), each
# distilled into a 3-layer student (10% of the questions held out for its temperature),
# exported to int8, checked and signed with var/keys/fleet.pem.
DATA ?= ../shared/datasets
SCI  := $(DATA)/semeval2013-task7-2way/sciEntsBank
BEETLE := $(DATA)/semeval2013-task7-2way/beetle
WIKI := $(DATA)/wikiqa
M    := var/models
KEY  := var/keys/fleet.pem
CB   := $(BIN)/chalkbox
# E3's grader recipe: both graders (SciEntsBank, Beetle) train with it.
GRADER_RECIPE := --epochs 3 --lr 3e-5 --max-length 128 --batch-size 16 --eval-fraction 0.0 --keep-checkpoints 0

models: setup
	@test -f $(KEY) || $(CB) export keygen $(KEY)
	$(CB) train grade --format semeval --data $(SCI)/train --out $(M)/grade-teacher \
	    $(GRADER_RECIPE)
	$(CB) train evaluate --model $(M)/grade-teacher --data $(SCI)/test-unseen-answers --format semeval --json > $(M)/grade-teacher/test-unseen-answers.json
	$(CB) train evaluate --model $(M)/grade-teacher --data $(SCI)/test-unseen-questions --format semeval --json > $(M)/grade-teacher/test-unseen-questions.json
	$(CB) train match --format wikiqa --data $(WIKI)/train --out $(M)/match-teacher \
	    --epochs 3 --lr 3e-5 --max-length 128 --batch-size 16 --keep-checkpoints 0
	$(CB) train evaluate --model $(M)/match-teacher --data $(WIKI)/dev --format wikiqa --json > $(M)/match-teacher/dev.json
	$(CB) train distill --teacher $(M)/grade-teacher --format semeval --data $(SCI)/train \
	    --num-layers 3 --epochs 3 --lr 1e-4 --eval-fraction 0.1 --out $(M)/grade-student
	$(CB) export build --model $(M)/grade-student --out $(M)/grade-student-int8 --key $(KEY) \
	    --check-format semeval --check-data $(SCI)/test-unseen-answers
	$(CB) export evaluate --bundle $(M)/grade-student-int8 --public-key var/keys/fleet.pub.pem --data $(SCI)/test-unseen-answers --format semeval --json > $(M)/grade-student-int8.test-unseen-answers.json
	$(CB) export evaluate --bundle $(M)/grade-student-int8 --public-key var/keys/fleet.pub.pem --data $(SCI)/test-unseen-questions --format semeval --json > $(M)/grade-student-int8.test-unseen-questions.json
	$(CB) train distill --teacher $(M)/match-teacher --format wikiqa --data $(WIKI)/train \
	    --num-layers 3 --epochs 1 --lr 1e-4 --eval-fraction 0.1 --out $(M)/match-student
	$(CB) export build --model $(M)/match-student --out $(M)/match-student-int8 --key $(KEY) \
	    --check-format wikiqa --check-data $(WIKI)/dev
	$(CB) export evaluate --bundle $(M)/match-student-int8 --public-key var/keys/fleet.pub.pem --data $(WIKI)/dev --format wikiqa --json > $(M)/match-student-int8.dev.json
	$(CB) export embed --out $(M)/embed-int8 --key $(KEY)
	@$(BIN)/python -m training.eval_summary \
	    $(M)/grade-teacher/test-unseen-answers.json $(M)/grade-teacher/test-unseen-questions.json $(M)/match-teacher/dev.json \
	    $(M)/grade-student-int8.test-unseen-answers.json $(M)/grade-student-int8.test-unseen-questions.json $(M)/match-student-int8.dev.json
	@echo "teachers: $(M)/grade-teacher $(M)/match-teacher"
	@echo "signed int8 students: $(M)/grade-student-int8 $(M)/match-student-int8 (and the encoder for ask: $(M)/embed-int8)"

# The Beetle grader (E9): its own target, since it alone takes about 21 minutes here and
# `make models` must stay within the hour. The box ships the SciEntsBank grader.
models-beetle: setup
	$(CB) train grade --format semeval --data $(BEETLE)/train --out $(M)/beetle-teacher \
	    $(GRADER_RECIPE)
	$(CB) train evaluate --model $(M)/beetle-teacher --data $(BEETLE)/test-unseen-answers --format semeval --json > $(M)/beetle-teacher/test-unseen-answers.json
	@$(BIN)/python -m training.eval_summary $(M)/beetle-teacher/test-unseen-answers.json
	@echo "teacher: $(M)/beetle-teacher"
