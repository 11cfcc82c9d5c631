# Two commands do all the set-up: `make demo` and `make test`.
# Both create the virtual environment in .venv on first use (needs only Python >= 3.11).

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: demo test test-unit test-shifted lint clean
.PHONY: prove chaos fuzz leaks cluster

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,bench,lint]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/telemed demo

# Most tests wait on worker processes, servers and clocks, not on the CPU: three pytest
# processes (pytest-xdist) take the suite from about 13 to 8 minutes on 2 cores. Every
# test has its own Redis namespace and database, so they may run side by side.
# TEST_PROCESSES=0 runs them in this process, one after another.
TEST_PROCESSES ?= 3

test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_PROCESSES) --dist worksteal $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

# The time-handling tests with this process's clock 400 days ahead of Redis's and
# PostgreSQL's (libfaketime; Debian package faketime): expiries, quotas, tokens, signatures
# and reminders must hold when our clock and the services' disagree. The monotonic clock
# stays real, so timeouts still work; .ci/faketime/ works around libfaketime 0.9.10's
# time.sleep under that setting, through a .pth file in the virtual environment.
CLOCK_SHIFT ?= +400d
SHIFTED_TESTS ?= tests/unit tests/integration/test_zoom_ratelimit.py tests/integration/test_zoom_tokens.py \
	tests/integration/test_zoom_user_tokens.py tests/integration/test_start_links.py \
	tests/integration/test_ingress_http.py tests/integration/test_zoom_webhook_http.py \
	tests/integration/test_scheduler_lock.py tests/integration/test_store.py \
	tests/integration/test_notifications_store.py tests/integration/test_zoom_simulator.py \
	tests/integration/test_zoom_workers.py tests/integration/test_reminders.py tests/integration/test_clock_shift.py

test-shifted: $(STAMP)
	@command -v faketime >/dev/null || { echo "make test-shifted needs libfaketime: apt-get install faketime" >&2; exit 1; }
	printf '%s\nimport telemed_faketime_sleep\n' "$(CURDIR)/.ci/faketime" \
		> "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/telemed-faketime.pth"
	TELEMED_TEST_CLOCK_SHIFT='$(CLOCK_SHIFT)' FAKETIME_DONT_FAKE_MONOTONIC=1 faketime -f '$(CLOCK_SHIFT)' \
		$(BIN)/python -m pytest -n $(TEST_PROCESSES) --dist worksteal $(SHIFTED_TESTS) $(PYTEST_ARGS)

# The proofs (docs/proving.md): crash and fault run, fuzzing, leak scan.
prove: $(STAMP)  ## the three suites at the size CI runs them
	$(BIN)/python -m pytest tests/chaos tests/fuzz tests/leaks $(PYTEST_ARGS)

chaos: $(STAMP)  ## the full crash and fault run: 500 bookings (TELEMED_CHAOS_BOOKINGS=N to change)
	TELEMED_CHAOS_FULL=1 $(BIN)/python -m pytest tests/chaos -p no:cacheprovider $(PYTEST_ARGS)

# Many hosts, any one failing (docs/proving.md): three worker hosts and a web host in network
# namespaces, Redis under Sentinel, a private PostgreSQL. Needs root, redis-server, socat and
# PostgreSQL's binaries. CI runs a 40-booking version inside `make test` (.ci/run sets
# TELEMED_CLUSTER=1); this is the full size, 200 bookings (TELEMED_CLUSTER_BOOKINGS=N to change).
cluster: $(STAMP)  ## the full cluster run
	TELEMED_CLUSTER=1 TELEMED_CLUSTER_FULL=1 $(BIN)/python -m pytest tests/cluster -n 0 -p no:cacheprovider $(PYTEST_ARGS)

fuzz: $(STAMP)  ## the fuzz suites with twenty times the examples
	TELEMED_FUZZ_SCALE=20 $(BIN)/python -m pytest tests/fuzz -p no:cacheprovider $(PYTEST_ARGS)

leaks: $(STAMP)  ## the integration suites, then the leak scans over what they left
	$(BIN)/python -m pytest tests/integration tests/leaks $(PYTEST_ARGS)

# Static checks: lint, types, security findings of medium or high severity, known CVEs,
# nothing read from outside the repository, and imports one way with no cycles (.importlinter).
lint: $(STAMP)
	$(BIN)/python .ci/check_standalone.py
	$(BIN)/ruff check .
	$(BIN)/mypy -p telemed
	$(BIN)/bandit -q -r events store zoom workers web foundation telemed --severity-level medium
	$(BIN)/lint-imports
	$(BIN)/python .ci/audit_dependencies.py $(BIN)/python

clean:
	rm -rf $(VENV) telemed-demo .telemed .pytest_cache
