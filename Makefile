# Two entry points (see README): `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test install install-test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-test: requirements.txt requirements-test.txt $(VENV)/.installed
	$(BIN)/pip install --quiet -r requirements-test.txt
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

# Embedded default: SQLite, in-process tasks, SMS and push to the console, demo data.
run: install
	DEBUG=1 $(BIN)/python manage.py migrate --noinput
	DEBUG=1 $(BIN)/python manage.py seed_demo
	@echo "Serving on http://$(HOST):$(PORT)/  (admin: http://$(HOST):$(PORT)/admin/, API docs: http://$(HOST):$(PORT)/api/docs/)"
	@# The scheduled work (challenge timeouts, OTP expiry, ...) runs beside the server, in-process.
	DEBUG=1 PUBLIC_BASE_URL=http://$(HOST):$(PORT) sh -c '$(BIN)/python manage.py run_schedule & trap "kill $$!" EXIT INT TERM; \
		$(BIN)/python manage.py runserver --noreload $(HOST):$(PORT)'

# The whole suite. Uses PostgreSQL and a real Celery worker on Redis when DATABASE_URL and
# CELERY_BROKER_URL name them; SQLite and in-process tasks otherwise.
test: install-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)
