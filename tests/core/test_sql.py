"""apps.core.sql: statements built once from the models must store and load exactly what the ORM
would, write all or nothing, and refuse what bulk_create would refuse."""

import uuid

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.audit.services import audit_event
from apps.cards.models import Card, Cardholder
from apps.core.crypto import pan_fingerprint
from apps.issuers.models import pan_prefix_key
from apps.core import sql
from apps.core.sql import insert_together
from apps.issuers.models import Issuer
from apps.threeds import risk
from apps.threeds.models import RiskPolicy, Transaction
from tests.factories import make_card

pytestmark = pytest.mark.django_db

PAN = "4111111111111111"


def values(obj) -> dict:
    return {f.attname: getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields}


def new_tx(issuer, **overrides) -> Transaction:
    fields = dict(
        issuer=issuer, three_ds_server_trans_id=uuid.uuid4(), ds_trans_id=uuid.uuid4(), message_version="2.2.0",
        device_channel="02", message_category="01", pan_last4="1111", pan_fingerprint="f" * 64, purchase_amount=12345,
        purchase_currency="978", purchase_exponent=2, merchant_name="Ｍerchant ☕", areq={"nested": {"list": [1, "two", None]}},
        ares={"transStatus": "Y"}, risk_score=12, risk_rules=[{"rule": "base", "weight": 10}], trans_status="Y",
        finished_at=timezone.now(),
    )
    return Transaction(**{**fields, **overrides})


def test_a_row_reads_back_as_the_orm_would_have_written_it(issuer):
    ours, theirs = new_tx(issuer), new_tx(issuer)
    insert_together([[ours]])
    theirs.save(force_insert=True)
    for written in (ours, theirs):
        stored = values(Transaction.objects.get(pk=written.pk))
        assert stored == values(written)
    assert not ours._state.adding and ours._state.db == "default"


@pytest.mark.parametrize("blob", [None, b"\x00\xffbinary"], ids=["no bytes", "bytes (not JSON: the VALUES form)"])
def test_every_kind_of_value_reads_back_as_written(issuer, blob):
    from apps.sms.models import SmsDelivery

    delivery = SmsDelivery(issuer=issuer, to="+819012345678", masked_to="+81 ••• •••• 5678", sender_id="ACME",
                           body_key_id="k1", body_blob=blob, next_attempt_at=timezone.now(), acs_trans_id=uuid.uuid4())
    insert_together([[delivery]])
    stored = SmsDelivery.objects.get(pk=delivery.pk)
    assert values(stored) == {**values(delivery), "body_blob": blob}


def test_groups_are_written_together_and_the_database_numbers_the_last(issuer):
    tx = new_tx(issuer)
    events = [audit_event(issuer=issuer, kind=f"test.{i}", actor="tests", acs_trans_id=tx.acs_trans_id, data={"i": i}) for i in range(3)]
    with CaptureQueriesContext(connection) as captured:
        insert_together([[tx], events])
    writes = [q for q in captured.captured_queries if q["sql"].split()[0].upper() not in ("SAVEPOINT", "RELEASE")]
    assert len(writes) == (1 if connection.vendor == "postgresql" else 2)
    assert [e.pk for e in events] == sorted(e.pk for e in events) and all(events)
    stored = AuditEvent.objects.filter(acs_trans_id=tx.acs_trans_id).order_by("id")
    assert [(e.pk, e.kind, e.data) for e in stored] == [(e.pk, e.kind, e.data) for e in events]
    assert [e.created_at for e in stored] == sorted(e.created_at for e in stored)


def test_a_failing_group_leaves_nothing_written_and_the_callers_transaction_usable(issuer):
    first = new_tx(issuer)
    insert_together([[first]])
    twin = new_tx(issuer, three_ds_server_trans_id=first.three_ds_server_trans_id, ds_trans_id=first.ds_trans_id)
    event = audit_event(issuer=issuer, kind="test.twin", actor="tests", acs_trans_id=twin.acs_trans_id)
    with transaction.atomic():
        with pytest.raises(IntegrityError):
            insert_together([[twin], [event]])
        assert Transaction.objects.count() == 1  # still usable: a savepoint took the failure
    assert not AuditEvent.objects.filter(kind="test.twin").exists()
    assert event.pk is None and twin._state.adding


def test_saved_or_mixed_objects_are_refused(issuer):
    saved = new_tx(issuer)
    saved.save(force_insert=True)
    with pytest.raises(ValueError):
        insert_together([[saved]])
    with pytest.raises(ValueError):
        insert_together([[new_tx(issuer), audit_event(issuer=issuer, kind="x", actor="tests")]])
    # Only the last group may leave its primary keys to the database.
    with pytest.raises(ValueError):
        insert_together([[audit_event(issuer=issuer, kind="x", actor="tests")], [new_tx(issuer)]])
    assert Transaction.objects.count() == 1 and not AuditEvent.objects.filter(kind="x").exists()


class TestTheAReqsRead:
    def test_the_card_and_what_comes_with_it_load_as_the_orm_loads_them(self, cardholder, issuer):
        card = make_card(cardholder=cardholder, pan=PAN)
        policy = RiskPolicy.objects.create(issuer=issuer, amount_thresholds={"978": "250.00"})
        found = risk.card_for_areq(fingerprint=pan_fingerprint(PAN), prefix=pan_prefix_key(PAN), areq={}, now=timezone.now())
        assert values(found) == values(Card.objects.get(pk=card.pk))
        with CaptureQueriesContext(connection) as captured:
            assert values(found.issuer) == values(Issuer.objects.get(pk=issuer.pk))
            assert values(found.cardholder) == values(Cardholder.objects.get(pk=cardholder.pk))
            assert values(found.issuer.risk_policy) == values(RiskPolicy.objects.get(pk=policy.pk))
            assert found.issuer.risk_policy.issuer is found.issuer
        assert len(captured.captured_queries) == 3  # only the three comparison reads: nothing lazy
        assert found.risk_recent_count == 0 and found.risk_merchant_known_id is None

    def test_an_issuer_without_a_policy_reads_as_having_none(self, cardholder):
        make_card(cardholder=cardholder, pan=PAN)
        found = risk.card_for_areq(fingerprint=pan_fingerprint(PAN), prefix=pan_prefix_key(PAN), areq={}, now=timezone.now())
        with pytest.raises(RiskPolicy.DoesNotExist):
            found.issuer.risk_policy

    def test_an_unknown_pan_finds_nothing(self, cardholder):
        make_card(cardholder=cardholder, pan=PAN)
        assert risk.card_for_areq(fingerprint=pan_fingerprint("5555555555554444"), prefix=pan_prefix_key("5555555555554444"), areq={}, now=timezone.now()) is None


@pytest.mark.skipif(connection.vendor != "postgresql", reason="server-side prepared statements are PostgreSQL's")
class TestPreparedStatements:
    QUERY = "SELECT %(n)s::int + 41 AS prepared_probe"

    def prepared(self) -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s", ["%prepared_probe%"])
            return cursor.fetchone()[0]

    def test_a_hot_statement_is_prepared_once_per_connection_and_logged_without_its_values(self):
        with CaptureQueriesContext(connection) as captured:
            for n in (1, 2, 3):
                with sql.cursor() as cursor:
                    cursor.execute(self.QUERY, {"n": n})
                    assert cursor.fetchone() == (41 + n,)
        assert self.prepared() == 1
        logged = [q["sql"] for q in captured.captured_queries]
        assert logged == [self.QUERY] * 3

    def test_errors_are_djangos_and_the_connection_goes_on(self, issuer):
        first = new_tx(issuer)
        insert_together([[first]])
        with pytest.raises(IntegrityError), transaction.atomic():
            with sql.cursor() as cursor:
                cursor.execute('INSERT INTO "threeds_transaction" SELECT * FROM "threeds_transaction" WHERE acs_trans_id = %(id)s',
                               {"id": first.acs_trans_id})
        assert Transaction.objects.count() == 1

    def test_none_is_prepared_when_the_setting_is_off(self, settings):
        settings.DB_PREPARED_STATEMENTS = False
        with sql.cursor() as cursor:
            cursor.execute(self.QUERY, {"n": 1})
        assert self.prepared() == 0


class TestTheJsonDocument:
    """On PostgreSQL the rows go as one JSON document; values of a field's plain type skip the
    field's preparation only where that preparation is known to change nothing."""

    def test_only_fields_whose_preparation_changes_nothing_are_sent_as_they_are(self):
        from django.db import models
        from phonenumber_field.modelfields import PhoneNumberField

        from apps.cards.models import Phone

        kinds = {f.name: sql._plain_kind(f) for f in Transaction._meta.concrete_fields}
        assert kinds["merchant_name"] == "str" and kinds["notification_url"] == "str"
        assert kinds["purchase_amount"] == "int" and kinds["interaction_counter"] == "int"
        assert kinds["acs_trans_id"] == "uuid" and kinds["finished_at"] == "datetime" and kinds["areq"] == "json"
        # Their own preparation: foreign keys, auto_now_add, a JSON encoder, a field class of a library.
        assert kinds["issuer"] is None and kinds["card"] is None and kinds["created_at"] is None
        assert sql._plain_kind(models.JSONField(encoder=models.JSONField)) is None
        assert isinstance(Phone._meta.get_field("number"), PhoneNumberField)
        assert sql._plain_kind(Phone._meta.get_field("number")) is None

        class Shouting(models.CharField):
            def get_prep_value(self, value):
                return super().get_prep_value(value).upper()

        assert sql._plain_kind(Shouting(max_length=3)) is None

    @pytest.mark.skipif(connection.vendor != "postgresql", reason="the JSON document is PostgreSQL's form")
    def test_values_that_are_not_of_the_plain_type_are_prepared_by_their_field(self, issuer):
        import warnings

        naive = timezone.now().replace(tzinfo=None)
        tx = new_tx(issuer, purchase_amount="120", pan_last4=1111, finished_at=naive, 
                    three_ds_server_trans_id=str(uuid.uuid4()))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            insert_together([[tx]])
        assert any("naive datetime" in str(w.message) for w in caught)  # as the ORM warns
        stored = Transaction.objects.get(pk=tx.pk)
        assert stored.purchase_amount == 120 and stored.pan_last4 == "1111"
        assert stored.finished_at == timezone.make_aware(naive) and isinstance(stored.three_ds_server_trans_id, uuid.UUID)

    @pytest.mark.skipif(connection.vendor != "postgresql", reason="the JSON document is PostgreSQL's form")
    def test_a_json_field_with_an_encoder_of_its_own_keeps_it(self, issuer, monkeypatch):
        from decimal import Decimal

        from django.core.serializers.json import DjangoJSONEncoder

        field = AuditEvent._meta.get_field("data")
        monkeypatch.setattr(field, "encoder", DjangoJSONEncoder)
        sql._json_plan.cache_clear()
        try:
            event = audit_event(issuer=issuer, kind="test.encoder", actor="tests")
            event.data = {"amount": Decimal("12.50"), "at": uuid.UUID(int=7)}
            insert_together([[event]])
        finally:
            sql._json_plan.cache_clear()
        assert AuditEvent.objects.get(pk=event.pk).data == {"amount": "12.50", "at": str(uuid.UUID(int=7))}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="a PostgreSQL backend to terminate")
@pytest.mark.django_db(transaction=True)
class TestTheReadThatIsTheHealthCheck:
    """The AReq's read stands in for Django's `SELECT 1` health check on a reused connection: no
    extra round trip, and a connection that died between requests is replaced, not an error."""

    def backend_pid(self) -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            return cursor.fetchone()[0]

    def next_request(self, monkeypatch):
        from django.core.signals import request_started

        request_started.send(sender=None)  # what Django does when a request starts
        assert not connection.health_check_done
        monkeypatch.setattr(connection, "is_usable", lambda: pytest.fail("a SELECT 1 round trip was made"))

    def test_a_healthy_connection_is_read_without_a_select_1(self, cardholder, monkeypatch):
        make_card(cardholder=cardholder, pan=PAN)
        pid = self.backend_pid()
        self.next_request(monkeypatch)
        assert risk.card_for_areq(fingerprint=pan_fingerprint(PAN), prefix=pan_prefix_key(PAN), areq={}, now=timezone.now()) is not None
        assert connection.health_check_done and self.backend_pid() == pid

    def test_a_connection_that_died_since_the_last_request_is_replaced(self, cardholder, monkeypatch):
        import psycopg

        card = make_card(cardholder=cardholder, pan=PAN)
        pid = self.backend_pid()
        settings_dict = connection.settings_dict
        with psycopg.connect(host=settings_dict["HOST"], port=settings_dict["PORT"] or 5432, user=settings_dict["USER"],
                             dbname=settings_dict["NAME"], autocommit=True) as other:
            assert other.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone() == (True,)
        self.next_request(monkeypatch)
        found = risk.card_for_areq(fingerprint=pan_fingerprint(PAN), prefix=pan_prefix_key(PAN), areq={}, now=timezone.now())
        assert found is not None and found.pk == card.pk
        assert self.backend_pid() != pid

    def test_inside_a_transaction_the_check_stays_djangos(self, cardholder, monkeypatch):
        from django.core.signals import request_started

        make_card(cardholder=cardholder, pan=PAN)
        self.backend_pid()
        request_started.send(sender=None)
        checks = []
        monkeypatch.setattr(connection, "is_usable", lambda: checks.append(1) or True)
        with transaction.atomic():
            assert risk.card_for_areq(fingerprint=pan_fingerprint(PAN), prefix=pan_prefix_key(PAN), areq={}, now=timezone.now()) is not None
        assert checks == [1]  # a read that failed there could not be sent again

    def test_an_error_on_a_live_connection_is_not_sent_again(self, monkeypatch):
        from django.db import OperationalError

        pid = self.backend_pid()
        with connection.cursor() as cursor:
            cursor.execute("SET statement_timeout = 10")
        self.next_request(monkeypatch)
        sent = []

        def count(execute, sql_, params, many, context):
            sent.append(sql_)
            return execute(sql_, params, many, context)

        try:
            with connection.execute_wrapper(count), pytest.raises(OperationalError):
                sql.read_one("SELECT pg_sleep(1)", {})  # cancelled by the timeout; the connection lives on
            assert len(sent) == 1 and self.backend_pid() == pid
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET statement_timeout")
