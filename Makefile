# `make test` builds its environment from scratch and runs the whole suite (what CI runs).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: venv test unit lint typecheck bench demo samples clean

$(BIN)/pycompose: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

venv: $(BIN)/pycompose

lint: venv
	$(BIN)/ruff check orchestrator tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: venv
	$(BIN)/pytest -q tests/unit

test: venv lint
	$(BIN)/pytest -q tests

bench: venv
	$(BIN)/python bench/config_bench.py
	bash bench/install_peers.sh
	$(BIN)/python bench/up_bench.py
	$(BIN)/python bench/runtime_start.py
	$(BIN)/python bench/namespace_net_start.py
	$(BIN)/python bench/build_bench.py
	$(BIN)/python bench/pull_bench.py

# the main job: the sample stack on the default backend
demo: venv
	bash samples/hello/demo.sh

# every sample stack (samples/*/check.sh) on every available backend
samples: venv
	bash samples/run.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
