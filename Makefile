# Two commands do all the set-up: `make demo` and `make test`.
# Both create the virtual environment in .venv on first use (needs only Python >= 3.11).

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: demo test test-unit lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,bench,lint]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/telemed demo

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

# Static checks: lint, types, security findings of medium or high severity, known CVEs.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy events store zoom workers web telemed
	$(BIN)/bandit -q -r events store zoom workers web telemed --severity-level medium
	$(BIN)/python .ci/audit_dependencies.py $(BIN)/python

clean:
	rm -rf $(VENV) telemed-demo .telemed .pytest_cache
