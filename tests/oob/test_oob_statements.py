"""The app channel's first CReq on the OOB path: under 15 statements (issue 12; the SMS path and
the code CReqs are counted in tests/threeds/test_challenge_statements.py). 19 before the request's
devices went in one INSERT, its audit event into the CReq's one audit INSERT, the devices' issuer
into their read and the risk policy into the challenge's lock.

  1 BEGIN                                          challenge_app_creq's transaction
  2 SELECT ... FOR UPDATE OF challenge             with the transaction, issuer, risk policy, card...
                                                   and the sealed session key the JWE CReq opens with
  3 SELECT the cardholder's active devices         with their issuer (the push's audit event)
  4 INSERT the AuthnRequest
  5 INSERT its devices                             one row per device, one statement
  6 SAVEPOINT                                      apps.push.push_authn_request, per device:
  7 SELECT device FOR UPDATE                         one push at a time per device
  8 SELECT COUNT recent pushes                       the per-device limit
  9 INSERT the push delivery
 10 INSERT audit push.created
 11 RELEASE SAVEPOINT
 12 UPDATE challenge: state, method, OOB deadline, ..., sdkCounterStoA and acsCounterAtoS
 13 INSERT audit events: threeds.creq_received, oob.request_created
 14 COMMIT
(The push itself is sent after the commit, by a worker: not counted.)
"""

import pytest
from django.db import connection, reset_queries
from django.test.utils import CaptureQueriesContext

from apps.audit.models import AuditEvent
from apps.oob.models import AuthnRequest
from tests.conftest import JsonClient
from tests.oob.conftest import send_areq
from tests.support.app_session import JOSE

pytestmark = pytest.mark.usefixtures("push_file", "sms_file")


def test_the_first_oob_creq_costs_under_15_statements(ds, app, oob_card, django_capture_on_commit_callbacks, push_file):
    tx = send_areq(ds, oob_card)
    reset_queries()  # a full query log (9,000) would cut the capture short
    with django_capture_on_commit_callbacks(execute=True):
        with CaptureQueriesContext(connection) as queries:
            response = JsonClient().post("/3ds/v2/creq", tx.session.encrypt(), content_type=JOSE)
    statements = [q["sql"] for q in queries.captured_queries]
    assert response.status_code == 200 and tx.session.sdk.decrypt_cres(response.content.decode())["acsUiType"] == "04"
    assert len(statements) <= 14 < 15, "\n".join(sql[:160] for sql in statements)
    request = AuthnRequest.objects.get(challenge_id=tx.acs_trans_id)
    assert [str(d.pk) for d in request.devices.all()] == [app.device_id]
    assert len(push_file.messages()) == 1
    kinds = set(AuditEvent.objects.filter(acs_trans_id=tx.acs_trans_id).values_list("kind", flat=True))
    assert {"threeds.creq_received", "oob.request_created", "push.created"} <= kinds
