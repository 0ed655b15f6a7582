# pharmacy-ledger: the two commands are `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME_STAMP := $(VENV)/.installed-runtime
DEV_STAMP := $(VENV)/.installed-dev
# `make serve PORT=8801` or `PORT=8801 make serve`; without PORT, `ledger serve` takes
# LEDGER_PORT (default 8000). HOST only from the command line (`make serve HOST=0.0.0.0`; a
# shell's own HOST variable is no address), else LEDGER_HOST (default 127.0.0.1).
PORT ?=
SERVE_ARGS = $(if $(filter command line,$(origin HOST)),--host $(HOST)) $(if $(PORT),--port $(PORT))
# Under CI the property and API-fuzz tests run a bounded number of examples.
PYTEST_ARGS ?= -n auto

.PHONY: setup runtime serve demo test lint postgres clean lock bench browser screenshots

# What serving needs (the package and its runtime dependencies, pinned): `make serve`, `make demo`.
runtime: $(RUNTIME_STAMP)

$(RUNTIME_STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e .
	touch $@

# Everything, dev tools too (pytest, ruff, mypy, playwright, schemathesis): `make test`, `make lint`.
setup: $(DEV_STAMP)

$(DEV_STAMP): $(RUNTIME_STAMP)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $@

serve: runtime
	$(BIN)/ledger serve $(SERVE_ARGS)

# A demo chain that ends yesterday, in a fresh demo.db (SQLite, replaced on every run), served:
# prints sample cards, a service, a finance and a POS key, then the URL and the admin key.
DEMO_DB := demo.db
DEMO_ARGS ?= --stores 12 --members 1000 --days 365
DEMO_ENV = LEDGER_DATABASE_URL=sqlite:///./$(DEMO_DB) $(if $(PORT),LEDGER_PORT=$(PORT))
demo: runtime
	rm -f $(DEMO_DB) $(basename $(DEMO_DB)).*.db $(basename $(DEMO_DB))*.db-wal $(basename $(DEMO_DB))*.db-shm
	$(DEMO_ENV) $(BIN)/ledger demo $(DEMO_ARGS)
	$(DEMO_ENV) $(BIN)/ledger serve $(SERVE_ARGS)

# Starts the machine's PostgreSQL cluster when nothing listens on 127.0.0.1:5432.
postgres:
	@pg_isready -q -h 127.0.0.1 -p 5432 || \
		pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@for i in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && exit 0; sleep 1; done; \
		echo "PostgreSQL did not come up on 127.0.0.1:5432" >&2; exit 1

# Tests that start several ledger processes (marked `solo`) run alone after the rest: together
# with the parallel workers they would pass PostgreSQL's default 100 connections.
test: setup postgres browser
	$(BIN)/pytest $(PYTEST_ARGS) -m "not solo"
	$(BIN)/pytest -m solo

# Debian's Chromium and CJK fonts for the console's browser tests (tests/browser, Playwright
# driving /usr/bin/chromium); installed if missing, never a browser download.
BROWSER_PACKAGES := chromium fonts-noto-cjk
APT_INSTALL := DEBIAN_FRONTEND=noninteractive apt-get install -y -q
browser:
	@dpkg -s $(BROWSER_PACKAGES) >/dev/null 2>&1 || $(APT_INSTALL) $(BROWSER_PACKAGES) || \
		{ apt-get update -q && $(APT_INSTALL) $(BROWSER_PACKAGES); }

# PNGs of each console page on a served demo chain, into docs/screenshots/.
screenshots: setup browser
	$(BIN)/python -m tests.browser.screenshots docs/screenshots

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy ledger projections api replay_tools entry tests bench

# The benchmarks of issues 5 and 18 (bench/README.md), ~15 minutes: one JSON line per figure, a table,
# and a dated section appended to docs/PERFORMANCE.md. BENCH_ARGS goes to bench/run.py
# (e.g. BENCH_ARGS="--seconds 10 --no-doc"). Needs wrk (Debian's package, installed if missing).
BENCH_ARGS ?=
bench: setup postgres
	@command -v wrk >/dev/null || apt-get install -y wrk || { apt-get update && apt-get install -y wrk; }
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# Re-resolves the pinned dependency set (run after changing pyproject.toml dependencies).
lock:
	rm -rf /tmp/ledger-lock && $(PYTHON) -m venv /tmp/ledger-lock
	/tmp/ledger-lock/bin/pip install --quiet -e '.[dev]'
	/tmp/ledger-lock/bin/pip freeze --exclude-editable | grep -v '^pharmacy-ledger' > constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
