"""A request is decided once, whatever arrives together (PostgreSQL, real row locks)."""

import pytest

from apps.audit.models import AuditEvent
from apps.oob.models import AuthnRequest
from apps.threeds.models import RReqDelivery, Transaction
from tests.concurrency import run_parallel
from tests.conftest import JsonClient
from tests.oob.conftest import creq, send_areq
from tests.support.fixtures import postgres_only  # noqa: F401 (autouse fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("push_file", "sms_file")]


def started(oob_card):
    ds = JsonClient()
    tx = send_areq(ds, oob_card)
    assert creq(ds, tx)["acsUiType"] == "04"
    return tx


def test_two_parallel_valid_assertions_approve_once(app, oob_card):
    tx = started(oob_card)
    options = app.proceed(tx.acs_trans_id).json()
    # Two genuine assertions (counters 1 and 2) for the same options: both verify on their own.
    credentials = [app.assertion_for(options), app.assertion_for(options)]

    def post(i):
        client = JsonClient()
        client.credentials(**app.client._credentials)
        return client.post(f"/sdk/v1/authn-requests/{tx.acs_trans_id}/assertion", {"credential": credentials[i]})

    responses = run_parallel(2, post)

    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 409], [r.content for r in responses]
    assert AuthnRequest.objects.get(challenge_id=tx.acs_trans_id).state == AuthnRequest.APPROVED
    assert Transaction.objects.get(pk=tx.acs_trans_id).trans_status == "Y"
    assert RReqDelivery.objects.filter(transaction_id=tx.acs_trans_id).count() == 1
    assert AuditEvent.objects.filter(acs_trans_id=tx.acs_trans_id, kind="threeds.challenge_finished").count() == 1


def test_approve_racing_cancel_decides_once(app, oob_card):
    tx = started(oob_card)
    options = app.proceed(tx.acs_trans_id).json()
    credential = app.assertion_for(options)

    def act(i):
        client = JsonClient()
        client.credentials(**app.client._credentials)
        if i == 0:
            return client.post(f"/sdk/v1/authn-requests/{tx.acs_trans_id}/assertion", {"credential": credential})
        return client.post(f"/sdk/v1/authn-requests/{tx.acs_trans_id}/cancel")

    responses = run_parallel(2, act)

    assert sorted(r.status_code for r in responses) == [200, 409], [r.content for r in responses]
    state = AuthnRequest.objects.get(challenge_id=tx.acs_trans_id).state
    row = Transaction.objects.get(pk=tx.acs_trans_id)
    if state == AuthnRequest.APPROVED:
        assert row.trans_status == "Y"
    else:  # the cancel won: the challenge went on with an SMS code
        assert state == AuthnRequest.CANCELLED and row.trans_status == "" and row.challenge.fallback_reason == "cancelled_in_app"
