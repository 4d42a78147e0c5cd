"""The engine's statements (issue 12): an SMS try is four statements on PostgreSQL, each built once from the models' metadata (apps.core.model_sql); what they read and write
is what the ORM would. A count, not a time: it holds on any machine."""

import pytest
from django.core import checks
from django.db import connection, models
from django.test.utils import CaptureQueriesContext, isolate_apps

from apps.core import model_sql
from apps.delivery import engine
from apps.delivery.apps import check_channel_models
from apps.sms import services
from apps.sms.models import PRIMARY, TWILIO, SmsDelivery, SmsProviderConfig
from tests.fakes.twilio_server import PRIMARY_SID
from tests.sms.conftest import CODE, new_number, otp_body, reload

pytestmark = pytest.mark.django_db


def create(issuer, **kwargs) -> SmsDelivery:
    return services.sms_delivery_create(issuer=issuer, to=new_number(), body=otp_body(), secret=CODE, **kwargs)


@pytest.mark.django_db(transaction=True)  # autocommit, as in a worker: no test transaction around it
def test_an_sms_try_is_four_statements_on_postgresql(issuer, fake_twilio):
    if connection.vendor != "postgresql":
        pytest.skip("the claim reads the row in the same statement on PostgreSQL only")
    delivery = create(issuer)
    with CaptureQueriesContext(connection) as queries:
        assert services.sms_delivery_send(delivery_id=delivery.pk) is None
    statements = [q["sql"].split()[0].upper() for q in queries.captured_queries]
    # the claim (UPDATE ... RETURNING with the OTP code joined), the issuer's providers, the
    # attempt (claimed), then the record: attempt, delivery and audit event in one statement.
    assert statements == ["WITH", "SELECT", "INSERT", "WITH"], statements
    delivery = reload(delivery)
    assert delivery.status == SmsDelivery.QUEUED and delivery.tries == 1
    assert len(fake_twilio.requests(to=delivery.to)) == 1


def test_the_claim_reads_the_row_and_its_related_rows_as_select_related_would(issuer, fake_twilio):
    delivery = create(issuer)
    expected = SmsDelivery.objects.select_related(*services.SMS_CHANNEL.related).get(pk=delivery.pk)
    claimed = engine.claim(services.SMS_CHANNEL, delivery.pk)
    with CaptureQueriesContext(connection) as queries:
        assert claimed.otp_code_id is None and claimed.issuer_id == expected.issuer_id
        assert claimed.otp_code is None and claimed.to == expected.to
        assert claimed.unseal_body() == expected.unseal_body()  # the sealed body read back as bytes
        assert claimed.created_at == expected.created_at and claimed.pk == expected.pk
    assert queries.captured_queries == []  # nothing lazy left to load
    assert claimed.tries == 1 and claimed.lease_expires_at is not None
    assert engine.claim(services.SMS_CHANNEL, delivery.pk) is None  # the lease is taken


def test_model_sql_update_and_select_match_the_orm(issuer):
    config = SmsProviderConfig.objects.create(issuer=issuer, role=PRIMARY, backend=TWILIO, account_sid="AC" + "1" * 32,
                                              from_number="+15005550006")
    assert model_sql.update(SmsProviderConfig, {"from_number": "+15005550007"}, pk=config.pk, is_active=False) == 0
    assert model_sql.update(SmsProviderConfig, {"from_number": "+15005550007"}, pk=config.pk, is_active=True) == 1
    [read] = model_sql.select(SmsProviderConfig, issuer_id=issuer.pk, is_active=True)
    orm = SmsProviderConfig.objects.get(pk=config.pk)
    assert read.from_number == orm.from_number == "+15005550007"
    assert {f.attname: getattr(read, f.attname) for f in SmsProviderConfig._meta.concrete_fields} == {
        f.attname: getattr(orm, f.attname) for f in SmsProviderConfig._meta.concrete_fields}
    assert model_sql.select(SmsProviderConfig, issuer_id=issuer.pk, is_active=False) == []
    with pytest.raises(TypeError):
        model_sql.update(SmsProviderConfig, {"from_number": models.F("account_sid")}, pk=config.pk)


def test_every_channel_model_can_be_written_and_a_model_that_cannot_fails_the_check(monkeypatch):
    assert check_channel_models() == []
    assert "delivery.E001" not in [e.id for e in checks.run_checks()]

    class Placeholder(models.CharField):
        def get_placeholder(self, value, compiler, connection):
            return "UPPER(%s)"

    with isolate_apps("apps.delivery"):
        class Odd(models.Model):
            name = Placeholder(max_length=10)

            class Meta:
                app_label = "delivery"

    class OddChannel(engine.Channel):
        name, delivery_model, attempt_model = "odd", SmsDelivery, Odd

    monkeypatch.setitem(engine._channels, "odd", OddChannel())
    assert [e.id for e in check_channel_models()] == ["delivery.E001"]


def test_update_then_insert_inserts_only_when_the_last_update_changed_a_row(issuer):
    from apps.audit.models import AuditEvent
    from apps.audit.services import audit_event

    delivery = create(issuer)

    def event(kind):
        # JSON, a UUID, NULLs and integers: every type the INSERT … SELECT must carry.
        return audit_event(issuer_id=issuer.pk, kind=kind, actor="test", acs_trans_id=delivery.pk, obj=delivery,
                           data={"n": 1, "nested": {"ok": True}, "none": None})

    moved = (SmsDelivery, {"error_code": "x1"}, {"pk": delivery.pk})
    nothing = (SmsDelivery, {"error_code": "x2"}, {"pk": delivery.pk, "status": SmsDelivery.FAILED})
    assert model_sql.update_then_insert([moved, nothing], [event("test.not_written")]) == 0
    assert reload(delivery).error_code == "x1"  # every UPDATE ran, the INSERT did not
    assert model_sql.update_then_insert([nothing, moved], [event("test.one"), event("test.two")]) == 1
    written = list(AuditEvent.objects.filter(kind__startswith="test.").order_by("id"))
    assert [e.kind for e in written] == ["test.one", "test.two"]
    assert written[0].data == {"n": 1, "nested": {"ok": True}, "none": None}
    assert written[0].acs_trans_id == delivery.pk and written[0].object_id == str(delivery.pk)
