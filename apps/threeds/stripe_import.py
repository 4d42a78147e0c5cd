"""A finished authentication in the shape a merchant passes to Stripe to import it into a
PaymentIntent (SPEC §3.7): `payment_method_options[card][three_d_secure]`, with the Cartes
Bancaires network options for co-badged cards.

Stripe requires what is sent to equal what the 3DS provider returned, so every value is the
transaction's own; a result that cannot be imported (not Y or A) is refused with its reason.
"""

from apps.core.exceptions import Conflict
from apps.core.pan import CARTES_BANCAIRES
from apps.threeds.models import Transaction
from apps.threeds.results import CB_AVALGO
from apps.threeds.areq import cb_exemption_bitmap

IMPORTABLE = ("Y", "A")
LOW_RISK = "low_risk"


def _refusal(tx: Transaction) -> Conflict:
    if not tx.trans_status:
        if tx.ares_trans_status == "C":
            return Conflict("The challenge of this transaction has not finished.", code="transaction_in_progress")
        if tx.ares_trans_status == "D":
            return Conflict(
                "The decoupled authentication of this transaction has not finished.", code="transaction_in_progress"
            )
        return Conflict("This transaction has no result.", code="transaction_not_authenticated")
    reason = f" (transStatusReason {tx.trans_status_reason})" if tx.trans_status_reason else ""
    cancel = f", challengeCancel {tx.challenge_cancel}" if tx.challenge_cancel else ""
    return Conflict(
        f"The transaction ended {tx.trans_status}{reason}{cancel}: only Y and A results can be imported into Stripe.",
        code="transaction_not_authenticated",
    )


def stripe_payment_method_options(tx: Transaction) -> dict:
    """{"payment_method_options": {"card": {...}}} for a Y or A result; Conflict otherwise."""
    if tx.trans_status not in IMPORTABLE or not tx.authentication_value:
        raise _refusal(tx)
    low_risk = tx.exemption == LOW_RISK
    three_d_secure = {
        "version": tx.message_version,
        "electronic_commerce_indicator": tx.eci,
        "cryptogram": tx.authentication_value,
        "transaction_id": str(tx.ds_trans_id),
        "ares_trans_status": tx.ares_trans_status,
    }
    indicator = tx.three_ds_requestor_challenge_ind
    if len(indicator) == 2 and indicator.isdigit():
        three_d_secure["requestor_challenge_indicator"] = indicator
    # The same decision as CB-EXEMPTION (cb_exemption_bitmap), so the two never contradict.
    three_d_secure["exemption_indicator"] = LOW_RISK if low_risk else "none"
    card: dict = {}
    if tx.network == CARTES_BANCAIRES:
        card["network"] = CARTES_BANCAIRES
        cartes_bancaires = {"cb_avalgo": CB_AVALGO}
        if tx.risk_score is not None:
            cartes_bancaires["cb_score"] = tx.risk_score
        cartes_bancaires["cb_exemption"] = cb_exemption_bitmap(tx)
        three_d_secure["network_options"] = {"cartes_bancaires": cartes_bancaires}
    card["three_d_secure"] = three_d_secure
    return {"payment_method_options": {"card": card}}


def stripe_form_lines(options: dict) -> str:
    """The same object as the form parameters of a Stripe call, one `key=value` a line, as
    Stripe's documentation writes them (`payment_method_options[card][three_d_secure][version]=2.2.0`).
    Values are not URL-encoded: pass each line to `curl --data-urlencode`, which encodes the value
    (the cryptogram's `+`, `/` and `=`) and leaves the bracketed key as it is."""
    lines: list[str] = []

    def walk(prefix: str, value) -> None:
        if isinstance(value, dict):
            for key, sub in value.items():
                walk(f"{prefix}[{key}]" if prefix else key, sub)
        else:
            lines.append(f"{prefix}={value}")

    walk("", options)
    return "\n".join(lines) + "\n"
