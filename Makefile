# Two commands on a fresh machine: `make run` and `make test`. Both set up what they need
# first (a virtualenv from constraints.txt, the Delta jars from Maven Central) and are
# idempotent: set-up steps are skipped while their inputs are unchanged.

PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMPS := .stamps
ENV    ?= local
# The demo: a small data set so `make run` finishes in minutes on 2 cores. Its history is
# long enough (420 days) for the 365-day features of the training date (first date - 30);
# from delivery DEMO_DRIFT_DAY on the data drifts (inputs and the churn behind them), and
# the report flags it; its drift alert retrains a challenger (usecase.yaml `retrain`), which
# the later dates shadow-score in the champion's pass. The churn outcomes of every date but
# the last arrive together once the 30 days of the last but one are over (DEMO_ARRIVAL):
# `make run` then fast-forwards to that date, ingests them, measures the models' realized
# quality, compares champion and challenger again with it, asks for a promotion (refused
# by the rules: too few dates with outcomes; recorded in `runs` and the registry is left
# as it was) and writes the report of the last scored date (DEMO_LAST) again.
DEMO_CUSTOMERS ?= 2000
DEMO_DAYS      ?= 6
DEMO_SEED      ?= 7
DEMO_START     ?= 2026-03-01
DEMO_HISTORY   ?= 420
DEMO_DRIFT_DAY ?= 3
# Reason codes on the demo's scored rows (docs/scoring.md#reason-codes-scoringreasonstop_k):
# set here, not in examples/churn/usecase.yaml, so the tests that run the demo use case stay
# without TreeSHAP's cost. `make run DEMO_REASONS=` scores without them.
DEMO_REASONS   ?= --set scoring.reasons.top_k=3
DEMO_ARRIVAL   ?= $(shell date -u -d '$(DEMO_START) + $(DEMO_DAYS) days + 28 days' +%F)
DEMO_LAST      ?= $(shell date -u -d '$(DEMO_START) + $(DEMO_DAYS) days - 1 day' +%F)
# The benchmark (see bench/RESULTS.md): row counts of the three table sizes, repetitions,
# features tables, scenarios, models, variants, earlier dates in `scores` for the steady one.
BENCH_ROWS ?= 1M,4M,16M
BENCH_REPS ?= 2
BENCH_TABLES ?= demo,float
BENCH_SCENARIOS ?= first,steady
BENCH_MODELS ?= tree,linear
BENCH_VARIANTS ?= a,n,b,c,d,r,s
BENCH_HISTORY ?= 30
BENCH_CURRENT_WRITE ?= merge
# The packed venv's interpreter: the archive's bin/python links to it, so every node needs it
# at that path (docs/deploy.md, "The packed venv's Python"). A venv's python stands for the
# interpreter behind it; the default is the one behind .venv, the Python the tests' driver
# runs. For a cluster, build on its image: `make dist ENV_PYTHON=/usr/bin/python3.11`.
ENV_PYTHON ?= $(abspath $(PY))
ENV_ARCHIVE := dist/scoring-env.tar.gz

export PYSPARK_PYTHON := $(abspath $(PY))
export PYSPARK_DRIVER_PYTHON := $(abspath $(PY))

.PHONY: setup run test lint bench dist clean screenshot

setup: $(STAMPS)/venv $(STAMPS)/jars $(STAMPS)/spark-defaults $(STAMPS)/gcc

$(STAMPS)/venv: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[spark,mlflow,dev]'
	mkdir -p $(STAMPS) && touch $@

$(STAMPS)/jars: deps/delta-jars.pom.xml
	mvn -q -B -f deps/delta-jars.pom.xml dependency:copy-dependencies \
	  -DoutputDirectory=$(CURDIR)/.jars -DincludeScope=runtime \
	  -DincludeArtifactIds=delta-spark_2.13,delta-storage
	mkdir -p $(STAMPS) && touch $@

# The local Spark's spark-defaults.conf gets the Delta jars and our Python, so that
# `.venv/bin/spark-submit jobs/<step>.py --env local ...` works without --jars.
$(STAMPS)/spark-defaults: $(STAMPS)/venv $(STAMPS)/jars scoring/core/session.py
	$(PY) -m scoring.core.session local
	touch $@

run: setup
	$(PY) -m scoring generate-demo-data --env $(ENV) --customers $(DEMO_CUSTOMERS) \
	  --days $(DEMO_DAYS) --seed $(DEMO_SEED) --start $(DEMO_START) \
	  --history-days $(DEMO_HISTORY) --drift-day $(DEMO_DRIFT_DAY)
	$(PY) -m scoring pipeline --env $(ENV) --run-date $(DEMO_START) --days $(DEMO_DAYS) --report \
	  --train-if-missing $(DEMO_REASONS)
	$(PY) -m scoring ingest --env $(ENV) --run-date $(DEMO_ARRIVAL)
	$(PY) -m scoring quality --env $(ENV) --run-date $(DEMO_ARRIVAL)
	$(PY) -m scoring compare --env $(ENV) --run-date $(DEMO_LAST)
	$(PY) -m scoring promote --env $(ENV) --run-date $(DEMO_LAST) --to champion \
	  --model models:/scoring_churn@challenger --reason "make run: retrained on the drift" \
	  || echo "make run: the promotion was refused by the rules (expected; see runs)"
	$(PY) -m scoring report --env $(ENV) --run-date $(DEMO_LAST)

# The cluster test (tests/deploy/test_cluster.py) runs the packed venv of dist/. Packing it
# downloads the pinned dependencies from PyPI, so it is set-up, redone only when they or the
# build change; the test builds the zip, jobs and use case archives itself (seconds).
$(ENV_ARCHIVE): $(STAMPS)/venv pyproject.toml constraints.txt deploy/build.py
	$(PY) deploy/build.py --dist dist --python $(ENV_PYTHON)

test: setup $(ENV_ARCHIVE) $(STAMPS)/chromium
	$(PY) -m pytest

# gcc compiles tree models for the compiled scoring path, on by default (docs/scoring.md,
# "Compiled tree inference"; without gcc the native model scores, with a warning in runs);
# tests/score/test_compiled.py and the bench's variant (a) need it.
$(STAMPS)/gcc:
	command -v gcc >/dev/null || (apt-get update -q && apt-get install -y -q --no-install-recommends gcc libc6-dev)
	mkdir -p $(STAMPS) && touch $@

# Debian's headless Chromium: tests/monitor/test_report_browser.py renders the monitoring
# report in it, and `make screenshot` draws the README's picture with it. Installed with
# apt-get (root) when missing; without root, install the `chromium` package by other means
# or point SCORING_CHROMIUM at a Chromium binary (docs/monitoring.md, "The report").
$(STAMPS)/chromium:
	test -x /usr/bin/chromium || (apt-get update -q && apt-get install -y -q --no-install-recommends chromium)
	mkdir -p $(STAMPS) && touch $@

# The README's picture of the report: the newest report of `make run` (the demo's drifted
# day) to docs/img/report_<D>.png, or `make screenshot REPORT=path/report_D.html SCREENSHOT=out.png`.
REPORT ?= $(lastword $(sort $(wildcard lakehouse/churn/reports/report_*.html)))
SCREENSHOT ?= docs/img/$(notdir $(REPORT:.html=.png))
screenshot: $(STAMPS)/chromium
	@test -n "$(REPORT)" || { echo "no report: run make run first, or pass REPORT=path.html"; exit 2; }
	$(PY) -m scoring.monitor.screenshot $(REPORT) $(SCREENSHOT)

lint: setup
	$(VENV)/bin/ruff check scoring jobs tests deploy bench examples
	$(VENV)/bin/ruff format --check scoring jobs tests deploy bench examples
	$(VENV)/bin/mypy scoring jobs tests deploy bench
	# Each example is checked on its own: its files are modules of its folder (features.py, ...).
	for usecase in examples/*/; do $(VENV)/bin/mypy "$$usecase" || exit 1; done

# Our score step (compiled and native) vs mlflow.pyfunc.spark_udf, in-process pandas and the
# Spark floor, on the demo's and an all-float table, first run and steady state; writes the
# measured tables into bench/RESULTS.md. The full matrix takes several times the 2 hours of one
# table and scenario on 2 cores (narrow it with the BENCH_* knobs): never part of `make test`.
bench: setup
	$(PY) -m bench --sizes $(BENCH_ROWS) --reps $(BENCH_REPS) --tables $(BENCH_TABLES) \
		--scenarios $(BENCH_SCENARIOS) --models $(BENCH_MODELS) --variants $(BENCH_VARIANTS) \
		--history $(BENCH_HISTORY) --current-write $(BENCH_CURRENT_WRITE)

# The wheel, the --py-files zip, the job entry points, the use case archives and the packed
# venv, in dist/ (docs/deploy.md).
dist: setup
	$(PY) deploy/build.py --dist dist --python $(ENV_PYTHON)

clean:
	rm -rf lakehouse spark-warehouse metastore_db derby.log dist build

# The newest pyspark / delta-spark pair (docs/foundation.md, "Versions users run"): its own
# venv and jars folder, and `make test-latest` runs the suite on it. Run by hand or as a CI
# job of its own; never part of `make test`. Its constraints are constraints.txt with the
# lines of constraints-latest.txt in place of those packages' own (pip takes no two pins of
# one package). The `spark` extra is left out: its range is the pinned pair's.
VENV_LATEST := .venv-latest
PY_LATEST   := $(VENV_LATEST)/bin/python
JARS_LATEST := $(CURDIR)/.jars-latest
LATEST_ENV  := SCORING_JARS_DIR=$(JARS_LATEST) PYSPARK_PYTHON=$(abspath $(PY_LATEST)) \
  PYSPARK_DRIVER_PYTHON=$(abspath $(PY_LATEST))
# e.g. make test-latest PYTEST_ARGS='-m "not slow"'
PYTEST_ARGS ?=

.PHONY: setup-latest test-latest

setup-latest: $(STAMPS)/venv-latest $(STAMPS)/jars-latest $(STAMPS)/spark-defaults-latest

# Package names compared as pip compares them (case, and - _ . alike).
$(STAMPS)/constraints-latest.txt: constraints.txt constraints-latest.txt
	mkdir -p $(STAMPS)
	awk -F'==' 'function key(s) { s = tolower(s); gsub(/[-_.]+/, "-", s); return s } \
	  FNR == NR { if ($$0 !~ /^#/ && NF == 2) latest[key($$1)] = 1; print; next } \
	  !(key($$1) in latest)' constraints-latest.txt constraints.txt > $@

$(STAMPS)/venv-latest: pyproject.toml $(STAMPS)/constraints-latest.txt
	test -x $(PY_LATEST) || $(PYTHON) -m venv $(VENV_LATEST)
	$(PY_LATEST) -m pip install -q --disable-pip-version-check \
	  -c $(STAMPS)/constraints-latest.txt -e '.[mlflow,dev]' pyspark delta-spark
	touch $@

$(STAMPS)/jars-latest: deps/delta-jars-latest.pom.xml
	mvn -q -B -f deps/delta-jars-latest.pom.xml dependency:copy-dependencies \
	  -DoutputDirectory=$(JARS_LATEST) -DincludeScope=runtime -DexcludeTransitive=true
	mkdir -p $(STAMPS) && touch $@

$(STAMPS)/spark-defaults-latest: $(STAMPS)/venv-latest $(STAMPS)/jars-latest scoring/core/session.py
	$(LATEST_ENV) $(PY_LATEST) -m scoring.core.session local
	touch $@

test-latest: setup-latest
	$(LATEST_ENV) $(PY_LATEST) -m pytest $(PYTEST_ARGS)
