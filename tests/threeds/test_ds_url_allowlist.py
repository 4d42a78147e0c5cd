"""SSRF through dsURL (issue 11): an AReq whose dsURL is not a configured DS endpoint gets Erro
303 and nothing is stored; the RReq sender refuses again at send time, and never sends to a
private address, without storing anything the destination would have answered."""

import pytest

from apps.audit.models import AuditEvent
from apps.threeds.models import Challenge, RReqAttempt, RReqDelivery, Transaction
from tests.core.tripwire import tripwire  # noqa: F401  (fixture)
from tests.threeds.builders import areq
from tests.threeds.test_areq import post
from tests.threeds.test_rreq import PAN, eager_tasks, fast_retries, finish, finished_challenge  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def ds_allowlist(settings):
    settings.DS_URL_ALLOWLIST = ["https://ds.example/"]


@pytest.mark.parametrize(
    "ds_url",
    [
        "{tripwire}/internal",
        "http://169.254.169.254/latest/meta-data/",
        "https://ds.example.evil.example/rreq",
        "https://ds.example@evil.example/rreq",
        "http://ds.example/rreq",
    ],
)
def test_an_areq_naming_another_ds_url_gets_erro_303_and_nothing_is_stored(client, card, ds_allowlist, tripwire, ds_url):
    message = areq(pan=PAN, threeDSRequestorChallengeInd="04", dsURL=ds_url.format(tripwire=tripwire.url().rstrip("/")))
    events = AuditEvent.objects.count()

    erro = post(client, message)

    assert erro["messageType"] == "Erro" and erro["errorComponent"] == "A"
    assert (erro["errorCode"], erro["errorDetail"]) == ("303", "dsURL")
    assert erro["errorDescription"] == "Access denied, invalid endpoint"
    assert erro["threeDSServerTransID"] == message["threeDSServerTransID"] and "acsTransID" not in erro
    assert Transaction.objects.count() == 0 and Challenge.objects.count() == 0 and RReqDelivery.objects.count() == 0
    assert AuditEvent.objects.count() == events
    assert tripwire.connections == 0


def test_an_areq_naming_a_configured_ds_endpoint_is_answered(client, card, ds_allowlist):
    ares = post(client, areq(pan=PAN, dsURL="https://ds.example/3ds/rreq"))
    assert ares["messageType"] == "ARes"
    assert Transaction.objects.get(acs_trans_id=ares["acsTransID"]).ds_url == "https://ds.example/3ds/rreq"


def test_a_malformed_ds_url_is_still_203(client, card, ds_allowlist):
    erro = post(client, areq(pan=PAN, dsURL="not a url"))
    assert (erro["errorCode"], erro["errorDetail"]) == ("203", "dsURL")


def test_with_an_empty_allowlist_every_areq_is_303(client, card, settings):
    settings.DS_URL_ALLOWLIST = []
    assert post(client, areq(pan=PAN))["errorCode"] == "303"
    assert Transaction.objects.count() == 0


# ---------------------------------------------------------------- the RReq sender


@pytest.mark.usefixtures("eager_tasks", "fast_retries")
def test_an_rreq_to_a_ds_url_no_longer_allowed_fails_at_once_without_a_request(card, tripwire, settings, django_capture_on_commit_callbacks):
    # Recorded while the URL was allowed (or written by other code): refused again at send time.
    tx = finished_challenge(card, ds_url=tripwire.url("127.0.0.1", "/internal"), trans_status="Y")
    settings.DS_URL_ALLOWLIST = ["https://ds.example/"]

    delivery = finish(tx, django_capture_on_commit_callbacks)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.tries) == (RReqDelivery.FAILED, 1)  # not retried six times
    assert delivery.last_error.startswith("Destination not allowed")
    [attempt] = RReqAttempt.objects.filter(delivery=delivery)
    assert (attempt.error_class, attempt.status_code, attempt.response_excerpt) == ("DestinationNotAllowed", None, "")
    event = AuditEvent.objects.get(acs_trans_id=tx.acs_trans_id, kind="threeds.rreq_failed")
    assert event.data["error"].startswith("Destination not allowed")
    assert tripwire.connections == 0


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
@pytest.mark.usefixtures("eager_tasks", "fast_retries")
def test_an_allowed_ds_url_on_a_private_address_is_refused_without_outbound_allow_private(
    card, tripwire, settings, django_capture_on_commit_callbacks, host
):
    settings.OUTBOUND_ALLOW_PRIVATE = False
    settings.DS_URL_ALLOWLIST = ["http://127.0.0.1:*/", "http://localhost:*/"]
    tx = finished_challenge(card, ds_url=tripwire.url(host, "/internal"), trans_status="Y")

    delivery = finish(tx, django_capture_on_commit_callbacks)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.tries) == (RReqDelivery.FAILED, 1)
    assert "Destination not allowed" in delivery.last_error and "loopback" in delivery.last_error
    assert RReqAttempt.objects.get(delivery=delivery).response_excerpt == ""
    assert tripwire.connections == 0


@pytest.mark.usefixtures("eager_tasks", "fast_retries")
def test_with_outbound_allow_private_the_local_ds_gets_the_rreq(card, tripwire, settings, django_capture_on_commit_callbacks):
    settings.OUTBOUND_ALLOW_PRIVATE = True  # development and tests: the control of the two above
    tx = finished_challenge(card, ds_url=tripwire.url("127.0.0.1", "/ds"), trans_status="Y")
    finish(tx, django_capture_on_commit_callbacks)
    assert [(m, p) for m, p, _ in tripwire.requests][:1] == [("POST", "/ds")]
