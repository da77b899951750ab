# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# Both create .venv if missing and install what they need (torch CPU first, then the package).

VENV ?= .venv
PYTHON ?= python3
TORCH_SPEC ?= torch==2.13.0
SHARED ?= ../shared
BIN := $(VENV)/bin

# Offline machines (CI, this workplace) have no Hugging Face hub: use the shared local model
# when it is there. Real users keep the hub default unless they set SWAPRANK_MODEL themselves.
LOCAL_MODEL := $(SHARED)/models/minilm-l6-scifact-ce
ifeq ($(SWAPRANK_MODEL),)
ifneq ($(wildcard $(LOCAL_MODEL)/config.json),)
export SWAPRANK_MODEL := cross-encoder:$(LOCAL_MODEL)
endif
endif

.PHONY: demo test lint install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[dev]" "$(TORCH_SPEC)"
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/swaprank demo

test: $(VENV)/.installed
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
