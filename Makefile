# cxrsearch: the two commands for a fresh machine are `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-fast es es-stop es-status vocabulary clean

# Create/reuse the virtual environment and install the project with its test tools.
$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# The main job: fetch the real reports, build labels/splits, print the corpus statistics.
demo: venv
	$(VENV)/bin/cxrsearch data fetch
	$(VENV)/bin/cxrsearch data prepare
	$(VENV)/bin/cxrsearch stats

# The whole test suite against a real Elasticsearch server, started before and stopped after.
test: venv
	bash scripts/es.sh run $(PY) -m pytest

# Unit tests only, no server.
test-fast: venv
	$(PY) -m pytest -m "not es and not slow"

es:
	bash scripts/es.sh start

es-stop:
	bash scripts/es.sh stop

es-status:
	bash scripts/es.sh status

# Rebuild the committed chest-radiograph MeSH vocabulary from the MeSH tree file.
vocabulary: venv
	$(PY) scripts/build_vocabulary.py

clean:
	rm -rf build dist *.egg-info .pytest_cache
