"""Left only for apps/sms, whose hand-written statements still call `cursor()` until SMS goes back
to the ORM (issue 12); the lead deletes this module when that lands. The AReq's statements moved to
apps/threeds/areq_store.py. Preparation is no longer this module's business: with
DB_SERVER_SIDE_BINDING on, Django's own cursor binds on the server and psycopg prepares."""

from django.db import connections


def cursor(*, using: str = "default"):
    return connections[using].cursor()
