#!/usr/bin/env python
"""Django's command line, as the README runs it: `python manage.py …` or `.venv/bin/python manage.py …`.

Two things it does before Django's own work:
- a Python without Django (the system's `python`, next to the project's `.venv`) runs the command
  again with `.venv/bin/python`, so the README's commands work whichever Python starts them;
- settings that refuse to load (DEBUG off on the development keys) are one line naming what to
  set, not a traceback; help still lists every command.
"""
import os
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
VENV_PYTHON = BASE_DIR / ".venv" / "bin" / "python"
HELP_WORDS = {"help", "--help", "-h", "--version"}


def asks_for_help(args: list[str]) -> bool:
    return not args or bool(HELP_WORDS & set(args))


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "issuer_portal.settings")
    try:
        import django  # noqa: F401
    except ImportError:
        # Only when this Python cannot run the project at all: an activated virtualenv with
        # Django installed is always used as it is.
        if VENV_PYTHON.exists() and not os.environ.get("MANAGE_PY_REEXEC"):
            os.environ["MANAGE_PY_REEXEC"] = "1"
            os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), str(Path(__file__).resolve()), *sys.argv[1:]])
        sys.exit(f"manage.py: Django is not installed for {sys.executable}; run `make install` first "
                 "(it creates .venv), then `.venv/bin/python manage.py …`.")

    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        settings.INSTALLED_APPS  # noqa: B018 (loads the settings)
    except ImproperlyConfigured as exc:
        if not asks_for_help(sys.argv[1:]):
            sys.exit(f"manage.py: {exc}. (DEBUG=1 gives the development defaults.)")
        # Help runs nothing: the development defaults only let it list every app's commands.
        os.environ["DEBUG"] = "1"
        execute_from_command_line(sys.argv)
        print(f"\nNote: {exc}; commands other than help refuse to run until then (DEBUG=1 gives the "
              "development defaults).", file=sys.stderr)
        return
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
