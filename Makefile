# Every target sets up what it needs: a fresh clone only needs Python 3.11+ and make.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARGS ?=
# make test: pytest-xdist workers, one per core of the 2-core CI machine. A file's tests stay on one worker, so a
# module fixture (a seeded simulator, 100,000 records) and the chaos matrix are set up once. TEST_WORKERS=0: no workers.
TEST_WORKERS ?= 2

.PHONY: demo test lint bench browser-deps clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[dev,postgres]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/ml-connector demo $(ARGS)

test: $(STAMP)
	-./scripts/install-browser.sh
	@# The tests start the CLI and the simulators as fresh processes many times (the chaos matrix forks its 630
	@# CLI runs from one process per lane). Where PYTHONDONTWRITEBYTECODE is set (this machine sets it), each start
	@# would compile the sources again: about 0.3 s of CPU a start.
	$(BIN)/python -m compileall -q src bench >/dev/null
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests $(wildcard bench)
	$(BIN)/ruff format --check src
	$(BIN)/mypy --strict src

bench: $(STAMP)
	$(BIN)/python -m bench $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
