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

# Embedded default: SQLite, in-process tasks, push to the console, demo data. SMS go to a file the
# simulator reads (simulate_3ds finds the code there); `SMS_BACKEND=console make run` prints them.
# The demo's password and API key are the same on every run (seed_demo derives them).
PUBLIC_BASE_URL ?= http://$(HOST):$(PORT)
SMS_BACKEND ?= file
SMS_FILE_PATH ?= $(CURDIR)/var/sms.jsonl
RUN_ENV = DEBUG=1 PORT=$(PORT) PUBLIC_BASE_URL=$(PUBLIC_BASE_URL) SMS_BACKEND=$(SMS_BACKEND) SMS_FILE_PATH=$(SMS_FILE_PATH)

run: install
	$(RUN_ENV) $(BIN)/python manage.py migrate --noinput
	$(RUN_ENV) $(BIN)/python manage.py seed_demo
	@echo "Serving on $(PUBLIC_BASE_URL)/  (admin: $(PUBLIC_BASE_URL)/admin/, API docs: $(PUBLIC_BASE_URL)/api/docs/)"
	@echo "SMS: $(SMS_BACKEND)$(if $(filter file,$(SMS_BACKEND)), → $(SMS_FILE_PATH)  (simulate_3ds reads the codes there; tail -f to watch))"
	@echo "Try, in another terminal: DEBUG=1 PORT=$(PORT) $(BIN)/python manage.py simulate_3ds --challenge"
	@# The scheduled work (challenge timeouts, OTP expiry, ...) runs beside the server, in-process.
	$(RUN_ENV) sh -c '$(BIN)/python manage.py run_schedule & trap "kill $$!" EXIT INT TERM; \
		$(BIN)/python manage.py runserver --noreload $(HOST):$(PORT)'

# The whole suite. Uses PostgreSQL and a real Celery worker on Redis when DATABASE_URL and
# CELERY_BROKER_URL name them; SQLite and in-process tasks otherwise.
# Two processes (pytest-xdist), each with its own test database, broker prefix and Celery worker
# (issuer_portal/settings_test.py); a test file's tests stay in one process.
PYTEST_ARGS ?= -n 2 --dist loadfile
test: install-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)
