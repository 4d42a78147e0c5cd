"""The ceiling of bench/areq.py: a bare Django project whose one view parses an AReq-sized JSON body
and does one INSERT, served by the same gunicorn, Python and PostgreSQL as the product.

    DJANGO_SETTINGS_MODULE=bench.ceiling_app.settings DATABASE_URL=postgres://... \\
    .venv/bin/gunicorn bench.ceiling_app.wsgi:application -k sync -w 3

Not part of the product: it is never in issuer_portal's INSTALLED_APPS or URL conf.
"""
