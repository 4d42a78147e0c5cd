"""What apps.push tells others, without importing them (no import cycle between apps)."""

from django.dispatch import Signal

# Sent once per push that cannot be delivered (refused, permanent error, tries exhausted), inside
# the transaction that records the report; a receiver that raises rolls the report back and beat
# retries it. Arguments: acs_trans_id, device_id, reason ("push_rate_limited" or "push_failed").
# apps.oob connects to it (it decides about the SMS fallback).
push_undeliverable = Signal()
