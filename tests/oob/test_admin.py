"""OOB requests in the admin: read-only, scoped per issuer, no WebAuthn challenge shown."""

import pytest
from django.urls import reverse

from apps.accounts.roles import ROLES
from apps.oob.models import AuthnRequest
from tests.factories import IssuerFactory
from tests.factories import client_for, make_staff
from tests.oob.conftest import creq, send_areq
from tests.support.fixtures import role_groups  # noqa: F401 (autouse fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("push_file", "sms_file")]


def make_request(ds, oob_card, app) -> AuthnRequest:
    tx = send_areq(ds, oob_card)
    creq(ds, tx)
    app.proceed(tx.acs_trans_id)
    return AuthnRequest.objects.get(challenge_id=tx.acs_trans_id)


@pytest.mark.parametrize("role", ROLES)
def test_staff_read_their_issuers_requests_only(ds, app, oob_card, issuer, role):
    ours = make_request(ds, oob_card, app)
    other_issuer = IssuerFactory()
    staff = client_for(make_staff(issuer, role))
    changelist = staff.get(reverse("admin:oob_authnrequest_changelist"))
    assert changelist.status_code == 200
    assert str(ours.challenge_id) in changelist.content.decode()
    page = staff.get(reverse("admin:oob_authnrequest_change", args=[ours.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "proceeded" in html and "webauthn_challenge" not in html
    assert bytes(ours.webauthn_challenge).hex() not in html
    # Nothing to add, change or delete: it is a record of what happened.
    assert staff.get(reverse("admin:oob_authnrequest_add")).status_code == 403
    outsider = client_for(make_staff(other_issuer, role))
    assert str(ours.challenge_id) not in outsider.get(reverse("admin:oob_authnrequest_changelist")).content.decode()
    assert outsider.get(reverse("admin:oob_authnrequest_change", args=[ours.pk])).status_code in (302, 404)
