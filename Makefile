# Two commands on a fresh clone: `make run` (the main job) and `make test`. Both bootstrap .venv and
# node_modules first, idempotently (stamp files), so a second run starts at once.
PYTHON ?= python3
VENV := .venv
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: run test setup lint bench clean

run: setup
	$(VENV)/bin/adledger up

# pytest exits 5 when it collected no tests: that is a failure, not a pass
test: setup
	@$(VENV)/bin/pytest; status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$status

setup: $(PY_STAMP) $(NODE_STAMP)

$(PY_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy ledger

bench: setup
	$(VENV)/bin/adledger bench gas

clean:
	rm -rf .adledger
