# make repro : build .venv from requirements.lock, then run the DVC pipeline (dvc repro)
# make test  : build .venv from requirements.lock, then run the test suite
# make lint  : ruff check + ruff format --check
# make docs  : serve the docs site (mkdocs-material) on http://127.0.0.1:8000; make docs-build: build it strictly
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export PATH := $(abspath $(BIN)):$(PATH)
export PREFECT_SERVER_ANALYTICS_ENABLED := false

.PHONY: install repro test lint lock clean prefect-server chromium js table1 bench docs docs-build

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

# make repro CONFIG=celeba : params.yaml = the defaults with configs/celeba.yaml's keys set (the workspace's params change; commit
# them on a branch), then reproduce. Plain `dvc repro`: its first stage (check) validates params.yaml, and a failed or
# killed stage leaves the last good outputs (persist: true in dvc.yaml; docs/reliability.md).
repro: install
ifdef CONFIG
	$(BIN)/python -m pipelines.config --compose configs/$(CONFIG).yaml
endif
	$(BIN)/dvc repro

# The suite runs on every core, whole test files per worker (module fixtures are built once), handed out in
# the order tests/conftest.py gives them: files with slow tests first.
PYTEST_ARGS ?= -n auto --dist loadfile --no-loadscope-reorder
test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Lint: ruff's rules and formatting (line length and rules in pyproject.toml); .ci/run runs it before the tests.
# `ruff check --fix . && ruff format .` mends what it reports; `pre-commit install` runs both before each commit.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Headless Chromium (Debian package) for the report's browser test; needs root or sudo.
chromium:
	sh scripts/install-chromium.sh

# The npm packages of js/ (onnxruntime-node, onnxruntime-web) exactly as js/package-lock.json pins them; the
# JS tests (tests/js) skip without them.
js:
	npm ci --prefix js --no-audit --no-fund

# Prefect API + UI on 127.0.0.1:4200 with its SQLite database under .prefect/
prefect-server: install
	PREFECT_HOME=$(CURDIR)/.prefect $(BIN)/prefect server start --host 127.0.0.1 --port 4200

# Re-resolve requirements.in into exact pins (needs the package registry).
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet -r requirements.in
	{ echo "# Exact pins for the whole environment (pip freeze of a venv built from requirements.in)."; \
	  echo "# Regenerate: make lock"; .venv-lock/bin/python -m pip freeze --exclude-editable; } > requirements.lock
	rm -rf .venv-lock

clean:
	rm -rf $(VENV)

# Table 1: every objective x SEEDS training seeds as DVC experiments -> reports/table1.json + the report's section.
SEEDS ?= 3
JOBS ?= 1
table1: install
	$(BIN)/python -m pipelines.orchestration.table1 --seeds $(SEEDS) --jobs $(JOBS) $(TABLE1_ARGS)

# Every benchmark (each ratio measured side by side in one run) -> reports/bench.json, shown in the
# report's Performance section. pythae is a benchmark-only dependency (requirements-bench.txt).
bench: install
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-bench.txt
	$(BIN)/python benchmarks/run_all.py $(BENCH_ARGS)

# The docs site (mkdocs.yml, docs/): tables generated from reports/*.json by docs/hooks.py, the API pages from the
# docstrings (mkdocstrings). docs serves it with live reload; docs-build (in .ci/run) fails on any warning.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --dev-addr 127.0.0.1:8000

docs-build: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict
