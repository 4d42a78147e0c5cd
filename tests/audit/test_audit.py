import pytest
from django.db import connection, transaction
from django.db.utils import DatabaseError

from apps.audit.models import AuditEvent
from apps.audit.services import audit_record

pytestmark = pytest.mark.django_db


def test_events_are_scrubbed_before_they_are_written(issuer):
    event = audit_record(
        issuer=issuer,
        kind="test",
        actor="tests",
        data={"pan": "4111111111111111", "otp": "123456", "note": "card 4111111111111111", "nested": {"acctNumber": "5555555555554444"}},
    )
    stored = AuditEvent.objects.values_list("data", flat=True).get(pk=event.pk)
    text = str(stored)
    assert "4111111111111111" not in text and "5555555555554444" not in text and "123456" not in text


def test_the_orm_refuses_to_change_or_delete_an_event(issuer):
    event = audit_record(issuer=issuer, kind="test", actor="tests")
    with pytest.raises(RuntimeError):
        event.save()
    with pytest.raises(RuntimeError):
        event.delete()


def test_the_database_refuses_to_change_or_delete_an_event(issuer):
    if connection.vendor != "postgresql":
        pytest.skip("the append-only trigger is PostgreSQL's")
    event = audit_record(issuer=issuer, kind="test", actor="tests")
    for sql in ("UPDATE audit_auditevent SET kind = 'x' WHERE id = %s", "DELETE FROM audit_auditevent WHERE id = %s"):
        with pytest.raises(DatabaseError, match="append-only"):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(sql, [event.pk])
    assert AuditEvent.objects.get(pk=event.pk).kind == "test"


def test_enrollment_writes_audit_events_without_the_pan(api, cardholder, issuer):
    api.post("/api/v1/cards", {"card_id": "c1", "cardholder": str(cardholder.pk), "pan": "4111111111111111", "expiry_month": 12, "expiry_year": 2099})
    event = AuditEvent.objects.get(kind="card.created")
    assert event.issuer == issuer and event.actor.startswith("api_key:")
    assert event.data["last4"] == "1111"
    assert "4111111111111111" not in str(event.data)


def test_several_events_in_one_insert_keep_their_order_and_are_scrubbed(issuer, django_assert_num_queries):
    from apps.audit.services import audit_event, audit_record_many

    events = [audit_event(issuer=issuer, kind=f"test.{i}", actor="tests", data={"note": "card 4111111111111111", "otp": "123456"})
              for i in range(3)]
    with django_assert_num_queries(1):
        audit_record_many(events)
    stored = list(AuditEvent.objects.filter(kind__startswith="test."))
    assert [e.kind for e in stored] == ["test.2", "test.1", "test.0"]  # newest first, as the trail reads
    assert [e.pk for e in events] == sorted(e.pk for e in events) and all(e.pk for e in events)
    assert "4111111111111111" not in str([e.data for e in stored]) and "123456" not in str([e.data for e in stored])


def test_written_events_cannot_be_written_again(issuer):
    from apps.audit.services import audit_record_many

    event = audit_record(issuer=issuer, kind="test", actor="tests")
    with pytest.raises(RuntimeError):
        audit_record_many([event])
