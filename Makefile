# cxrsearch: the two commands for a fresh machine are `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv demo lint test test-fast bench es es-stop es-status vocabulary clean browser test-tools serve

# Create/reuse the virtual environment and install the project with its test tools.
# Exact versions from constraints.txt; FAISS from the `cpu` extra (`gpu` on a CUDA machine: EXTRAS=dev,gpu).
EXTRAS ?= dev,cpu
$(STAMP): setup.cfg pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[$(EXTRAS)]'
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
	@echo "cxrsearch: the web UI is starting; open http://$(SERVE_HOST):$(SERVE_PORT)/ (Ctrl-C stops it)"
	$(CX) serve --host $(SERVE_HOST) --port $(SERVE_PORT)

# The web UI and JSON API under gunicorn (see `cxrsearch serve --help`).
SERVE_HOST ?= 127.0.0.1
SERVE_PORT ?= 8000
serve: venv
	$(CX) serve --host $(SERVE_HOST) --port $(SERVE_PORT)

# The whole test suite against a real Elasticsearch server, started before and stopped after,
# including the browser tests (Debian's Chromium) and the docker/ checks (docker-compose config).
test: venv lint test-tools
	bash scripts/es.sh run $(PY) -m pytest

# The linter (ruff; rules in pyproject.toml). `$(VENV)/bin/ruff check --fix .` applies the safe fixes.
lint: venv
	$(VENV)/bin/ruff check .

# Unit tests only: no server, no browser.
test-fast: venv lint
	$(PY) -m pytest -m "not es and not slow and not browser"

# Debian's Chromium for the browser tests (Playwright never downloads a browser of its own here).
CHROMIUM ?= /usr/bin/chromium
browser:
	@if [ -x "$(CHROMIUM)" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's chromium for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "the browser tests need Chromium at $(CHROMIUM): run 'apt-get install -y chromium' as root" >&2; exit 1; fi

# The browser, and docker-compose for validating docker/compose.yaml offline (skipped when it cannot be had).
test-tools: browser
	@if command -v docker-compose >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null; } || \
		echo "docker-compose could not be installed: the compose check will be skipped" >&2; \
	else echo "docker-compose is not installed: the compose check will be skipped" >&2; fi

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
