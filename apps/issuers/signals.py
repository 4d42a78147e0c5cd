"""What apps.issuers tells others, without importing them (no import cycle between apps)."""

from django.dispatch import Signal

# Sent by issuer_create once the issuer is saved, inside its transaction: a receiver that raises
# rolls the new issuer back. Arguments: issuer, otp_delivery ("provider" or "issuer").
# apps.otp connects to it (the issuer's default OTP policy: ready to serve from the start).
issuer_created = Signal()
