# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# `make test` creates .venv with everything (.[dev]); `make demo` creates its own small .venv-demo with
# only what the demo imports (.[demo]), so the first result does not wait for Ray, OpenVINO or mypy and
# .venv is never touched. Both install CPU torch first, then the package.

VENV ?= .venv
PYTHON ?= python3
TORCH_SPEC ?= torch==2.13.0
SHARED ?= ../shared
BIN := $(VENV)/bin
DEMO_VENV ?= .venv-demo
# Infinity (a self-hosted rerank server the suite starts for real) needs sentence-transformers<4,
# which cannot share the main venv (6.x): it gets its own. Pinned to the versions last verified
# together; torch first, from the same CPU wheel, so pip never pulls a CUDA build.
INFINITY_VENV ?= .venv-infinity
INFINITY_SPEC ?= infinity-emb[server,torch]==0.0.78
INFINITY_PINS ?= sentence-transformers==3.4.1 transformers==4.57.6 fastapi==0.165.0 huggingface-hub==0.36.2

# tests/test_packaging.py installs the built wheel with the cross-encoder extra into a fresh venv, and the
# suite runs without network: the wheels that extra needs are downloaded here (make install has the
# network), resolved from the package's own metadata, never copied from .venv. Gitignored.
WHEELHOUSE ?= .wheelhouse

# Offline machines (CI, this workplace) have no Hugging Face hub: use the shared local model
# when it is there. Real users keep the hub default unless they set SWAPRANK_MODEL themselves.
LOCAL_MODEL := $(SHARED)/models/minilm-l6-scifact-ce
ifeq ($(SWAPRANK_MODEL),)
ifneq ($(wildcard $(LOCAL_MODEL)/config.json),)
export SWAPRANK_MODEL := cross-encoder:$(LOCAL_MODEL)
endif
endif

# BEIR SciFact for the demo's second part and the notebooks (SWAPRANK_DATA; both skip or explain without it).
LOCAL_DATA := $(SHARED)/data/beir/scifact
DEMO_DATA := $(or $(SWAPRANK_DATA),$(if $(wildcard $(LOCAL_DATA)/corpus.jsonl),$(LOCAL_DATA)))

.PHONY: demo notebooks test lint install infinity wheelhouse clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[dev]" "$(TORCH_SPEC)"
	touch $@

# Tuned for time to first result: no pip upgrade (the venv's own pip installs all of this), and
# --no-compile (byte-compiling torch's thousands of modules costs more CPU than unpacking them;
# Python compiles the few the demo imports on first use).
$(DEMO_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(DEMO_VENV)
	$(DEMO_VENV)/bin/python -m pip install -q --no-compile "$(TORCH_SPEC)"
	$(DEMO_VENV)/bin/python -m pip install -q --no-compile -e ".[demo]" "$(TORCH_SPEC)"
	touch $@

$(INFINITY_VENV)/.installed: Makefile
	$(PYTHON) -m venv $(INFINITY_VENV)
	$(INFINITY_VENV)/bin/python -m pip install -q --upgrade pip
	$(INFINITY_VENV)/bin/python -m pip install -q "$(TORCH_SPEC)"
	$(INFINITY_VENV)/bin/python -m pip install -q "$(INFINITY_SPEC)" $(INFINITY_PINS) "$(TORCH_SPEC)"
	$(INFINITY_VENV)/bin/python -c "import torch, sys; v = torch.__version__; \
		sys.exit(0 if v.split('+')[0] == '$(TORCH_SPEC)'.split('==')[1] else f'torch {v} replaced $(TORCH_SPEC)')"
	touch $@

$(WHEELHOUSE)/.complete: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip download -q -d $(WHEELHOUSE) "$(TORCH_SPEC)" ".[cross-encoder]"
	touch $@

wheelhouse: $(WHEELHOUSE)/.complete

# The real Infinity server for tests/test_infinity_server.py (its tests skip loudly without it).
infinity: $(INFINITY_VENV)/.installed

install: $(VENV)/.installed $(INFINITY_VENV)/.installed $(WHEELHOUSE)/.complete

demo: $(DEMO_VENV)/.installed
	SWAPRANK_DATA="$(DEMO_DATA)" $(DEMO_VENV)/bin/swaprank demo

# Re-run the notebooks and save them with their outputs (committed that way; see notebooks/regenerate.py).
notebooks: $(VENV)/.installed
	SWAPRANK_DATA="$(DEMO_DATA)" $(BIN)/python notebooks/regenerate.py

test: $(VENV)/.installed $(INFINITY_VENV)/.installed $(WHEELHOUSE)/.complete
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) $(DEMO_VENV) $(INFINITY_VENV) $(WHEELHOUSE) site .pytest_cache .mypy_cache .ruff_cache
