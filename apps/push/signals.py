"""What apps.push tells others, without importing them (no import cycle between apps)."""

from django.dispatch import Signal

# Sent once per push that cannot be delivered (refused, permanent error, tries exhausted), in the
# transaction that records undeliverable_reported_at: for a failed push, the transaction that ends
# the delivery; for a refused one, a transaction of its own after the creating one committed. A
# receiver that raises rolls the report back (and a failed push's end with it) and the delivery
# sweep tries again. Arguments: acs_trans_id, device_id, reason ("push_rate_limited" or
# "push_failed"). apps.threeds connects to it (oob_decisions: it decides about the SMS fallback).
push_undeliverable = Signal()
