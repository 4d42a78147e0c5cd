"""The engine's statements (issue 12): an SMS try is eight statements on PostgreSQL, the claim one
of them, each built once from the models' metadata (apps.core.model_sql); what they read and write
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
def test_an_sms_try_is_eight_statements_on_postgresql(issuer, fake_twilio):
    if connection.vendor != "postgresql":
        pytest.skip("the claim reads the row in the same statement on PostgreSQL only")
    delivery = create(issuer)
    with CaptureQueriesContext(connection) as queries:
        assert services.sms_delivery_send(delivery_id=delivery.pk) is None
    statements = [q["sql"].split()[0].upper() for q in queries.captured_queries]
    # claim (UPDATE ... RETURNING with the OTP code joined), the issuer's providers,
    # the attempt; then the record's transaction: attempt, delivery, audit.
    assert statements == ["WITH", "SELECT", "INSERT", "BEGIN", "UPDATE", "UPDATE", "INSERT", "COMMIT"], statements
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
