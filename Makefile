# One virtualenv (.venv) holds the project and its tools; every target sets it up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test test-slow test-cluster test-all coverage check lint typecheck bench bench-forecast bench-cost bench-intervals bench-anomaly bench-scale services browser clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

## The forecasting benchmark's own virtualenv: mlforecast pins pandas < 3.
BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed

$(BENCH_STAMP): pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

## AutoGluon-TimeSeries, the forecasting benchmark's higher anchor, in a virtualenv of its own:
## it pins mlforecast < 0.15 against .venv-bench's >= 1.0. Torch comes with it (2.5 GB and
## ~2 min with a CPU torch; more with PyPI's CUDA one). bench/forecast_autogluon.py runs
## bench/autogluon_worker.py in it, with the data passed through files.
AUTOGLUON_VENV := .venv-autogluon
AUTOGLUON_STAMP := $(AUTOGLUON_VENV)/.installed

$(AUTOGLUON_STAMP): bench/requirements-autogluon.txt
	$(PYTHON) -m venv $(AUTOGLUON_VENV)
	$(AUTOGLUON_VENV)/bin/pip install --quiet --upgrade pip
	$(AUTOGLUON_VENV)/bin/pip install --quiet -r bench/requirements-autogluon.txt
	touch $(AUTOGLUON_STAMP)

## Run the service on the embedded default: local Ray, SQLite and demo data under ./data.
run: setup
	$(BIN)/trainctl up

## PostgreSQL must be up for the tests; start the local cluster if it is not (a server
## named by TEST_POSTGRES_DSN is the operator's: it is only waited for).
services:
ifdef TEST_POSTGRES_DSN
	@for i in $$(seq 30); do pg_isready -q -d "$(TEST_POSTGRES_DSN)" && exit 0; sleep 1; done; \
		echo "PostgreSQL at TEST_POSTGRES_DSN does not answer" >&2; exit 1
else
	@pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@for i in $$(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && exit 0; sleep 1; done; \
		echo "PostgreSQL did not come up on 127.0.0.1:5432" >&2; exit 1
endif

## Debian's Chromium, which the console's browser tests drive through Playwright.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@test -x /usr/bin/chromium || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: setup
	$(BIN)/mypy .

## Lint, type-check and run the default tier: every test but the slow and cluster ones.
test: setup services browser lint typecheck
	$(BIN)/pytest -m "not slow and not cluster"

## The long scenarios: restarts, outages, fuzzing, many jobs, Ray Train.
test-slow: setup services browser
	$(BIN)/pytest -m slow

## The scenarios with a Ray cluster or service of their own (multi-node, restarts).
test-cluster: setup services
	$(BIN)/pytest -m cluster

## Lint, type-check and every test of every tier in one session: what CI runs.
test-all: setup services browser lint typecheck
	$(BIN)/pytest

## Line coverage of serve_app, actors, pipeline, db and domain over every tier (or the
## tests PYTEST_ARGS selects), Ray workers and subprocesses included.
PYTEST_ARGS ?=
coverage: setup services browser
	rm -f .coverage .coverage.*
	$(BIN)/pytest --cov --cov-report= $(PYTEST_ARGS)
	@# Workers that saved their data after pytest-cov combined it: add theirs.
	-$(BIN)/coverage combine --append --quiet
	$(BIN)/coverage report

bench: setup
	$(BIN)/python -m bench.cores
	$(BIN)/python -m bench.overhead
	$(BIN)/python -m bench.hpo
	$(BIN)/python -m bench.api_load
	$(BIN)/python -m bench.burst
	$(BIN)/python -m bench.batch_forecast
	$(BIN)/python -m bench.batch_intervals
	$(BIN)/python -m bench.forecast_memory
	$(BIN)/python -m bench.autoscaling
	$(BIN)/python -m bench.scheduling
	$(MAKE) bench-forecast
	$(MAKE) bench-cost
	$(MAKE) bench-intervals

## One job at 1M, 4M and 16M rows against mlforecast, and data-parallel at 16M (~40 min).
bench-scale: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python -m bench.scale

## Forecast quality against mlforecast and AutoGluon-TimeSeries (in .venv-autogluon; each
## set's fit takes the HPO job's seconds or 60, `--no-autogluon` skips it) on seventeen
## real and demo sets, and the backtest's speed (~25 min); `--held-back` scores the
## held-back sets alone.
bench-forecast: $(BENCH_STAMP) $(AUTOGLUON_STAMP)
	$(BENCH_VENV)/bin/python -m bench.forecast

## The default job's seconds, through the service and in process, against mlforecast with
## conformal intervals at 350k and 1.75M rows (~40 min).
bench-cost: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python -m bench.default_cost

## The P10-P90 interval static, rescaled by adaptive conformal inference and by the
## service's recent-window rule, on the real sets (~1 min).
bench-intervals: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python -m bench.adaptive_intervals

## Anomaly flags on real labelled series against ADTK and PyOD, which run in .venv-bench
## (~3 min; `--held-back` scores the held-back set alone), then whether an unlabelled
## incident in the validation part mutes later alarms on the real sets (~4 min).
bench-anomaly: setup $(BENCH_STAMP)
	$(BIN)/python -m bench.anomaly
	$(BIN)/python -m bench.anomaly_contamination

clean:
	rm -rf $(VENV) $(BENCH_VENV) $(AUTOGLUON_VENV) data .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.*
