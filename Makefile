# cxrsearch: the two commands for a fresh machine are `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-fast bench es es-stop es-status vocabulary clean

# Create/reuse the virtual environment and install the project with its test tools.
$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# The main job: real reports -> labels/splits -> synthetic corpus -> cascade -> index -> searches.
CX := $(VENV)/bin/cxrsearch
demo: venv
	$(CX) data fetch
	$(CX) data prepare
	$(CX) stats
	$(CX) data synth
	$(CX) train --preset tiny --reuse
	$(CX) reindex --checkpoint "$${CXRSEARCH_DATA:-data}/models/tiny/cascade.pt"
	$(CX) search calcified granuloma upper lobe right --k 5
	$(CX) similar CXR10_IM-0002-1001 --k 5

# The whole test suite against a real Elasticsearch server, started before and stopped after.
test: venv
	bash scripts/es.sh run $(PY) -m pytest

# Unit tests only, no server.
test-fast: venv
	$(PY) -m pytest -m "not es and not slow"

# The quick benchmark (under 3 minutes) of both backends after `make demo`: results/bench-<date>-<commit>/.
# Needs wrk (Debian package): installed here when missing and root, else the command fails naming it.
bench: venv
	command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && (apt-get install -y -q wrk || (apt-get update -q && apt-get install -y -q wrk)); } || { echo "make bench: needs wrk (apt-get install wrk)" >&2; exit 1; }
	bash scripts/es.sh run $(CX) bench --quick --backend both

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
