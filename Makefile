# Two commands on a fresh machine: `make lab` (the course) and `make test` (the checks).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT   ?= 8888

# Data: ../shared/data when it sits beside the project (development, CI), else data/.
SHARED_DATA := $(abspath ../shared/data)
export COURSEKIT_DATA ?= $(if $(wildcard $(SHARED_DATA)/mnist),$(SHARED_DATA),$(abspath data))

.PHONY: lab test unit notebooks browser bench lint sync clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=notebooks --port=$(PORT) $(if $(filter 0,$(shell id -u)),--allow-root,)

test: $(STAMP)
	@echo "== unit tests"; t0=$$(date +%s); \
	COURSEKIT_QUICK=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests \
	&& echo "== unit tests: $$(( $$(date +%s) - t0 )) s"
	@echo "== notebooks, student versions (QUICK, TODOs untouched)"; t0=$$(date +%s); \
	COURSEKIT_QUICK=1 $(BIN)/python -m pytest -q -p no:cacheprovider --nbval-lax --nbval-current-env \
		notebooks/[0-9]*.ipynb \
	&& echo "== student notebooks: $$(( $$(date +%s) - t0 )) s"
	@echo "== notebooks, solutions versions (QUICK, every exercise check must pass)"; t0=$$(date +%s); \
	COURSEKIT_QUICK=1 COURSEKIT_EXERCISES=strict $(BIN)/python -m pytest -q -p no:cacheprovider --nbval-lax \
		--nbval-current-env notebooks/soluciones \
	&& echo "== solutions notebooks: $$(( $$(date +%s) - t0 )) s"

unit: $(STAMP)
	COURSEKIT_QUICK=1 $(BIN)/python -m pytest -q tests $(ARGS)

notebooks: $(STAMP)
	COURSEKIT_QUICK=1 $(BIN)/python -m pytest -q --nbval-lax --nbval-current-env notebooks/[0-9]*.ipynb $(ARGS)
	COURSEKIT_QUICK=1 COURSEKIT_EXERCISES=strict $(BIN)/python -m pytest -q --nbval-lax --nbval-current-env \
		notebooks/soluciones $(ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check coursekit tests benchmarks tools scripts
	$(BIN)/lint-imports --no-cache --no-logo

sync: $(STAMP)
	$(BIN)/python tools/sync_notebooks.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
