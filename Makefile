# The few things people do. Every target works on a fresh clone with only Python 3.10+ installed:
# it makes a virtual environment in $(VENV) (set VENV to reuse another one).
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of torch is installed first when torch is missing, so that a plain "torch"
# requirement never pulls a multi-GB CUDA build. Override TORCH to pick another build.
TORCH ?= torch==2.13.0
PLUGINS := -e plugins/ddpm -e plugins/ddim -e plugins/latent-diffusion -e plugins/bddm -e plugins/glide
CONTRIB := -e contrib/pndm -e contrib/deis -e contrib/dpm-solver
PIP := $(PY) -m pip install --disable-pip-version-check -q

.PHONY: install install-runtime demo test lint typecheck pytest docs bench clean

$(PY):
	python3 -m venv $(VENV)

$(VENV)/.runtime: $(PY) pyproject.toml plugins/*/pyproject.toml
	$(PY) -c "import torch" 2>/dev/null || $(PIP) "$(TORCH)"
	$(PIP) -e . $(PLUGINS)
	touch $@

$(VENV)/.dev: $(VENV)/.runtime contrib/*/pyproject.toml
	$(PIP) -e ".[dev,docs]" $(CONTRIB)
	touch $@

install-runtime: $(VENV)/.runtime

install: $(VENV)/.dev

demo: install-runtime
	$(VENV)/bin/diffusers-hub demo --out demo.png

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy

pytest: install
	$(PY) -m pytest -q

docs: install
	$(VENV)/bin/mkdocs build --strict --site-dir site

test: lint typecheck pytest docs

bench: install
	$(PY) benchmarks/run.py

clean:
	rm -rf site build dist .pytest_cache .mypy_cache .ruff_cache
