"""Settings of the ceiling project: nothing but what one JSON view with one INSERT needs. The
database settings are the product's (same DATABASE_URL parsing, CONN_MAX_AGE and health checks)."""

import os

import dj_database_url

DEBUG = False
SECRET_KEY = os.environ.get("SECRET_KEY", "bench-ceiling-not-secret-0123456789abcdef0123456789")
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["bench.ceiling_app"]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "bench.ceiling_app.urls"
WSGI_APPLICATION = "bench.ceiling_app.wsgi.application"
DATABASES = {
    "default": dj_database_url.parse(
        os.environ["DATABASE_URL"],
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE") or 60),
        conn_health_checks=True,
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
