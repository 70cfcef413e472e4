# The two README commands: `make run` (install + demo case + serve) and `make test` (install + whole suite).
# Both are idempotent: each step is skipped when its result is already up to date.
VENV  := .venv
BIN   := $(VENV)/bin
SUDO  := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
PG_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432/onedoor_test
DEB   := chromium ffmpeg fonts-wqy-zenhei fonts-noto-cjk poppler-utils coturn haproxy gcc libvpx-dev

.PHONY: install system-deps run test test-pg lint bench soak

install: system-deps $(VENV)/.installed web/node_modules/.package-lock.json

system-deps:
	@command -v chromium >/dev/null && command -v ffprobe >/dev/null && command -v pdftotext >/dev/null \
	  && command -v turnserver >/dev/null && command -v haproxy >/dev/null \
	  && [ -e /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc ] && [ -e /usr/include/vpx/vp8cx.h ] \
	  || ($(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq \
	      --no-install-recommends $(DEB))

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install -q -e '.[test]'
	touch $@

web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	npm ci --prefix web --no-audit --no-fund --loglevel=error

run: install
	$(BIN)/onedoor demo
	$(BIN)/onedoor serve

# Two phases (docs/performance.md "The test suite"): three worker processes (pytest-xdist), where the tests that
# share Redis, HAProxy or veth pairs run one after another in one worker (tests/conftest.py MACHINE_WIDE "stores",
# --dist loadgroup); then, on a machine nothing else of the suite is using, the real-time link tests (the link
# emulator, coturn, the Chromium publishers: MACHINE_WIDE "links", marked `realtime`) one after another. Both phases
# always run; the target fails if either does.
test: install
	@$(BIN)/python -m pytest -n 3 --dist loadgroup -m "not realtime"; parallel=$$?; \
	  $(BIN)/python -m pytest -m realtime; realtime=$$?; \
	  echo "make test: parallel phase exit $$parallel, real-time phase exit $$realtime"; \
	  [ $$parallel -eq 0 ] && [ $$realtime -eq 0 ]

# The database-facing tests again on the machine's PostgreSQL (CI runs this after `make test`).
test-pg: install
	@psql -h 127.0.0.1 -U postgres -tc "select 1 from pg_database where datname='onedoor_test'" | grep -q 1 \
	  || createdb -h 127.0.0.1 -U postgres onedoor_test
	ONEDOOR_TEST_DATABASE_URL=$(PG_URL) $(BIN)/python -m pytest -m "not browser" tests/foundation

# The workflow and session models at length (make test runs 30 generated runs of each; CI runs
# `make soak MODEL_RUNS=200`).
MODEL_RUNS ?= 300
soak: install
	ONEDOOR_MODEL_RUNS=$(MODEL_RUNS) ONEDOOR_SESSION_RUNS=$(MODEL_RUNS) $(BIN)/python -m pytest -p no:cacheprovider \
	  tests/agreements/test_workflow_model.py tests/session/test_session_model.py -s

lint: install
	$(BIN)/ruff check . && $(BIN)/mypy

bench: install
	$(BIN)/python bench/bench_hub.py --pin && $(BIN)/python bench/bench_recording.py && $(BIN)/python bench/bench_record_session.py \
	  && $(BIN)/python bench/bench_nodes.py \
	  && ONEDOOR_NETEM_ALL=1 $(BIN)/python -m pytest -p no:cacheprovider -s tests/netem/test_weak_link.py
