# The two commands a newcomer needs are `make run` and `make test`; the rest is for CI and
# maintainers. Both create .venv from requirements.lock and, with DATABASE_URL unset, start an
# embedded PostgreSQL (see api/devstack.py).

PYTHON ?= $(shell for p in python3.11 python3.12 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 12))' 2>/dev/null && echo $$p && break; done)
VENV := .venv
BIN := $(VENV)/bin
STACK := $(BIN)/python -m api.devstack

.PHONY: run test bench verify cluster-test lint openapi openapi-check check-deploy migrations-check messages lock clean

$(BIN)/.installed: requirements.lock
	@test -n "$(PYTHON)" || { echo "Python 3.11 or 3.12 is required"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --no-deps -r requirements.lock
	@touch $@

run: $(BIN)/.installed
	$(STACK) run

test: $(BIN)/.installed
	$(STACK) test $(PYTEST_ARGS)

# BENCH_COMPARE=var/bench/bench-….json prints each figure against that earlier run.
bench: $(BIN)/.installed
	$(STACK) exec $(BIN)/python -m tests.bench $(if $(BENCH_COMPARE),--compare $(BENCH_COMPARE)) $(BENCH_ARGS)

# Third-party tools against the running stack (tests/verify); installs chromium and Spectral.
verify: $(BIN)/.installed
	$(STACK) exec $(BIN)/python -m tests.verify $(VERIFY_ARGS)

# Two API nodes behind HAProxy, PgBouncer, RabbitMQ then Redis, two workers per queue, two beats,
# faults under Locust load (tests/cluster). Needs Debian's haproxy, pgbouncer, rabbitmq-server.
cluster-test: $(BIN)/.installed
	$(BIN)/python -m tests.cluster $(CLUSTER_ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

openapi: $(BIN)/.installed
	DATABASE_URL=$${DATABASE_URL:-postgres:///unused} $(BIN)/python manage.py spectacular --validate --fail-on-warn --file openapi/openapi.yaml

openapi-check: $(BIN)/.installed
	@mkdir -p var
	@DATABASE_URL=$${DATABASE_URL:-postgres:///unused} $(BIN)/python manage.py spectacular --validate --fail-on-warn --file var/openapi.generated.yaml
	@diff -u openapi/openapi.yaml var/openapi.generated.yaml >/dev/null || { \
		echo "openapi/openapi.yaml is out of date with the code: run 'make openapi' and commit it."; exit 1; }

migrations-check: $(BIN)/.installed
	DATABASE_URL=$${DATABASE_URL:-postgres:///unused} $(BIN)/python manage.py makemigrations --check --dry-run

check-deploy: $(BIN)/.installed
	keyring=$$(mktemp -d) && \
	DATABASE_URL=$${DATABASE_URL:-postgres:///unused} DJANGO_SETTINGS_MODULE=api.settings.production \
	SECRET_KEY=$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(64))') \
	REFERRAL_KEKS=ci:$$($(BIN)/python -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())') \
	REFERRAL_KEYRING_DIR=$$keyring \
	$(BIN)/python manage.py check --deploy --fail-level WARNING; \
	status=$$?; rmdir "$$keyring"; exit $$status

# The person page's words (referrals/locale) after changing them in code, templates or a .po file.
# Needs GNU gettext; the compiled .mo files are committed, so run and test need none.
LOCALES := es fr pt ro ru th zh tl
messages: $(BIN)/.installed
	cd referrals && DATABASE_URL=$${DATABASE_URL:-postgres:///unused} ../$(BIN)/python ../manage.py \
		makemessages $(addprefix -l ,$(LOCALES)) --no-location --no-obsolete
	cd referrals && DATABASE_URL=$${DATABASE_URL:-postgres:///unused} ../$(BIN)/python ../manage.py \
		compilemessages

# Regenerate the lock file after changing pyproject.toml (needs uv in the venv).
lock: $(BIN)/.installed
	$(BIN)/pip install --quiet uv && $(BIN)/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(VENV) var
