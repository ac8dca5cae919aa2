# The two set-up commands of the README: `make demo` and `make test`.
# Each creates or refreshes the virtual environment in .venv when pyproject.toml changes.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,torch]"
	touch $(STAMP)

demo: $(STAMP)
	bash scripts/demo.sh

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --durations=15

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy

# Side by side with Qlib 0.9.7 (its own venv, created once under benchmarks/.peer-env).
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py --scale $(or $(SCALE),medium) $(if $(SUITES),--suites $(SUITES)) $(if $(REPEAT),--repeat $(REPEAT))

clean:
	rm -rf $(VENV) alphalab-runs .pytest_cache .mypy_cache .ruff_cache
