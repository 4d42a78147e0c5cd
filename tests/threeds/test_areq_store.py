"""apps.threeds.areq_store: the AReq's read and write, built from the models' metadata, must store
and load exactly what the ORM would, write all or nothing, refuse what save() refuses, follow a
model that gains a field (a db_default, a plain default, a generated column), and refuse at
start-up (system check threeds.E001) what it cannot write."""

import uuid

import pytest
from django.core import checks
from django.db import IntegrityError, connection, models, transaction
from django.db.models.functions import Lower, Now
from django.test.utils import CaptureQueriesContext, isolate_apps
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.audit.services import audit_event
from apps.cards.models import Card, Cardholder
from apps.core.crypto import pan_fingerprint
from apps.issuers.models import Issuer, pan_prefix_key
from apps.threeds import areq_store, risk
from apps.threeds.areq_store import write
from apps.threeds.models import Challenge, RiskPolicy, Transaction
from tests.factories import make_card

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


def card_for(pan=PAN, **kwargs):
    return risk.card_for_areq(fingerprint=pan_fingerprint(pan), prefix=pan_prefix_key(pan), areq=kwargs, now=timezone.now())


@pytest.mark.django_db
class TestTheWrite:
    def test_a_row_reads_back_as_the_orm_would_have_written_it(self, issuer):
        ours, theirs = new_tx(issuer), new_tx(issuer)
        write([[ours]])
        theirs.save(force_insert=True)
        for written in (ours, theirs):
            assert values(Transaction.objects.get(pk=written.pk)) == values(written)
        assert not ours._state.adding and ours._state.db == "default"

    def test_groups_are_written_together_and_the_database_numbers_the_last(self, issuer):
        tx = new_tx(issuer)
        challenge = Challenge(transaction=tx, method=Challenge.SMS_OTP, first_creq_deadline=timezone.now(), deadline=timezone.now())
        events = [audit_event(issuer=issuer, kind=f"test.{i}", actor="tests", acs_trans_id=tx.acs_trans_id, data={"i": i}) for i in range(3)]
        with CaptureQueriesContext(connection) as captured:
            write([[tx], [challenge], events])
        writes = [q for q in captured.captured_queries if q["sql"].split()[0].upper() not in ("SAVEPOINT", "RELEASE", "BEGIN")]
        assert len(writes) == (1 if connection.vendor == "postgresql" else 3)
        assert [e.pk for e in events] == sorted(e.pk for e in events) and all(e.pk for e in events)
        stored = AuditEvent.objects.filter(acs_trans_id=tx.acs_trans_id).order_by("id")
        assert [values(e) for e in stored] == [values(e) for e in events]
        assert [e.created_at for e in stored] == sorted(e.created_at for e in stored)
        assert values(Challenge.objects.get(pk=tx.pk)) == values(challenge)

    def test_a_failing_group_leaves_nothing_written_and_the_callers_transaction_usable(self, issuer):
        first = new_tx(issuer)
        write([[first]])
        twin = new_tx(issuer, three_ds_server_trans_id=first.three_ds_server_trans_id, ds_trans_id=first.ds_trans_id)
        event = audit_event(issuer=issuer, kind="test.twin", actor="tests", acs_trans_id=twin.acs_trans_id)
        with transaction.atomic():
            with pytest.raises(IntegrityError):
                write([[twin], [event]])
            assert Transaction.objects.count() == 1  # still usable: a savepoint took the failure
        assert not AuditEvent.objects.filter(kind="test.twin").exists()
        assert event.pk is None and twin._state.adding

    def test_saved_or_mixed_objects_are_refused(self, issuer):
        saved = new_tx(issuer)
        saved.save(force_insert=True)
        with pytest.raises(ValueError):
            write([[saved]])
        with pytest.raises(ValueError):
            write([[new_tx(issuer), audit_event(issuer=issuer, kind="x", actor="tests")]])
        # Only the last group may leave its primary keys to the database.
        with pytest.raises(ValueError):
            write([[audit_event(issuer=issuer, kind="x", actor="tests")], [new_tx(issuer)]])
        assert Transaction.objects.count() == 1 and not AuditEvent.objects.filter(kind="x").exists()

    def test_an_unsaved_related_object_is_refused_as_save_refuses_it(self, issuer):
        unsaved = Card(issuer=issuer, id=None)  # a key the database would have to give
        tx = new_tx(issuer, card=unsaved)
        with pytest.raises(ValueError, match="unsaved related object 'card'"):
            write([[tx]])
        assert not Transaction.objects.exists()

    def test_a_related_object_saved_after_it_was_assigned_gives_its_key(self, issuer):
        later = Issuer.objects.get(pk=issuer.pk)
        later.pk = None  # as if not saved yet when assigned...
        tx = new_tx(later)
        later.pk = issuer.pk  # ...and saved since
        write([[tx]])
        assert Transaction.objects.get(pk=tx.pk).issuer_id == issuer.pk


@pytest.mark.django_db
class TestTheRead:
    def test_the_card_and_what_comes_with_it_load_as_the_orm_loads_them(self, cardholder, issuer):
        card = make_card(cardholder=cardholder, pan=PAN)
        policy = RiskPolicy.objects.create(issuer=issuer, amount_thresholds={"978": "250.00"})
        found = card_for()
        assert values(found) == values(Card.objects.get(pk=card.pk))
        with CaptureQueriesContext(connection) as captured:
            assert values(found.issuer) == values(Issuer.objects.get(pk=issuer.pk))
            assert values(found.cardholder) == values(Cardholder.objects.get(pk=cardholder.pk))
            assert values(found.issuer.risk_policy) == values(RiskPolicy.objects.get(pk=policy.pk))
            assert found.issuer.risk_policy.issuer is found.issuer
        assert len(captured.captured_queries) == 3  # only the three comparison reads: nothing lazy
        assert found.risk_recent_count == 0 and found.risk_merchant_known_id is None
        assert found._state.db == "default" and not found._state.adding

    def test_an_issuer_without_a_policy_reads_as_having_none(self, cardholder):
        make_card(cardholder=cardholder, pan=PAN)
        with pytest.raises(RiskPolicy.DoesNotExist):
            card_for().issuer.risk_policy

    def test_an_unknown_pan_finds_nothing(self, cardholder):
        make_card(cardholder=cardholder, pan=PAN)
        assert card_for("5555555555554444") is None


# ---------------------------------------------------------------- a model that gains fields


def audit_event_copy(**extra_fields):
    """A model with AuditEvent's fields, and more, in an isolated registry (its own table)."""
    attrs = {"__module__": __name__, "Meta": type("Meta", (), {"app_label": "threeds", "db_table": "test_fastpath_event_copy"})}
    for field in AuditEvent._meta.local_fields:
        if field.primary_key:
            continue
        attrs[field.name] = (models.ForeignKey(Issuer, on_delete=models.PROTECT, db_index=False) if field.is_relation
                             else field.clone())
    return type("EventCopy", (models.Model,), {**attrs, **extra_fields})


@pytest.fixture
def event_copy():
    with isolate_apps("apps.threeds"):
        model = audit_event_copy(
            source=models.CharField(max_length=8, db_default="ds"),
            noted_at=models.DateTimeField(db_default=Now()),
            note=models.CharField(max_length=20, default=""),
            flagged=models.BooleanField(default=False),
            kind_folded=models.GeneratedField(expression=Lower("kind"), output_field=models.CharField(max_length=64), db_persist=True),
        )
        with connection.schema_editor() as editor:
            editor.create_model(model)
        try:
            yield model
        finally:
            with connection.schema_editor() as editor:
                editor.delete_model(model)


class TestAModelThatGainsFields:
    # transaction=True: SQLite cannot change its schema inside the test's transaction.
    @pytest.mark.django_db(transaction=True)
    def test_db_default_default_and_generated_fields_are_written_as_the_orm_writes_them(self, event_copy, issuer):
        def event(kind, **kw):
            return event_copy(issuer=issuer, kind=kind, actor="tests", data={"k": kind}, **kw)

        ours = [event("A.left", note="n"), event("B.given", source="3ri"), event("C.left")]
        theirs = [event("A.left", note="n"), event("B.given", source="3ri"), event("C.left")]
        tx = new_tx(issuer)
        write([[tx], ours])  # three rows, two shapes: the db_default given in one, left in two
        for obj in theirs:
            obj.save()
        assert all(not e._state.adding for e in ours)
        ignore = {"id", "created_at", "noted_at"}
        for mine, orms in zip(ours, theirs, strict=True):
            stored_mine, stored_orms = event_copy.objects.get(pk=mine.pk), event_copy.objects.get(pk=orms.pk)
            assert {k: v for k, v in values(stored_mine).items() if k not in ignore} == \
                   {k: v for k, v in values(stored_orms).items() if k not in ignore}
            assert stored_mine.noted_at is not None
            # What the database filled in reads back from it on first access, as a deferred field.
            assert mine.source == stored_mine.source and mine.kind_folded == mine.kind.lower()
            assert mine.noted_at == stored_mine.noted_at
        assert [e.source for e in ours] == ["ds", "3ri", "ds"]
        assert Transaction.objects.filter(pk=tx.pk).exists()

    def test_the_real_models_pass_the_check_and_a_field_with_its_own_placeholder_fails_it(self, monkeypatch):
        assert areq_store.check_written_models() == []
        assert not [m for m in checks.run_checks(tags=[checks.Tags.models]) if m.id == "threeds.E001"]

        class Point(models.CharField):
            def get_placeholder(self, value, compiler, connection):
                return "point(%s)"

        with isolate_apps("apps.threeds"):
            model = audit_event_copy(where=Point(max_length=20, default=""))
        monkeypatch.setattr(areq_store, "WRITTEN_MODELS", (*areq_store.WRITTEN_MODELS, model))
        errors = [m for m in checks.run_checks(tags=[checks.Tags.models]) if m.id == "threeds.E001"]
        assert len(errors) == 1 and errors[0].obj is model and "EventCopy.where" in errors[0].msg
        assert errors[0].level == checks.ERROR
        with pytest.raises(TypeError, match="own SQL placeholder"):
            areq_store.InsertPlan(model)

    def test_a_model_with_a_parent_table_fails_the_check(self, monkeypatch):
        with isolate_apps("apps.threeds"):
            parent = audit_event_copy()
            child = type("ChildEvent", (parent,), {"__module__": __name__, "Meta": type("Meta", (), {"app_label": "threeds"})})
        monkeypatch.setattr(areq_store, "WRITTEN_MODELS", (child,))
        assert [e.id for e in areq_store.check_written_models()] == ["threeds.E001"]


# ---------------------------------------------------------------- the connection


@pytest.mark.skipif(connection.vendor != "postgresql", reason="a PostgreSQL backend to terminate")
@pytest.mark.django_db(transaction=True)
class TestAConnectionThatDied:
    """The read goes through Django's cursor: CONN_HEALTH_CHECKS finds a connection that died
    since the last request (a PostgreSQL restart, a failover) and replaces it, as for any query."""

    def backend_pid(self) -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            return cursor.fetchone()[0]

    def test_is_replaced_at_the_next_request(self, cardholder):
        import psycopg
        from django.core.signals import request_started

        card = make_card(cardholder=cardholder, pan=PAN)
        pid = self.backend_pid()
        settings_dict = connection.settings_dict
        with psycopg.connect(host=settings_dict["HOST"], port=settings_dict["PORT"] or 5432, user=settings_dict["USER"],
                             dbname=settings_dict["NAME"], autocommit=True) as other:
            assert other.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone() == (True,)
        request_started.send(sender=None)  # what Django does when a request starts
        found = card_for()
        assert found is not None and found.pk == card.pk
        assert self.backend_pid() != pid


PREPARED_AFTER_SIX_RUNS = (
    "import django; django.setup()\n"
    "from django.db import connection\n"
    "with connection.cursor() as cursor:\n"
    "    for i in range(6):\n"
    "        cursor.execute('SELECT %s::int + 1', [i])\n"
    "    cursor.execute('SELECT count(*) FROM pg_prepared_statements')\n"
    "    print(cursor.fetchone()[0])\n"
)


@pytest.mark.parametrize("binding, prepared", [("1", True), ("", False)])
@pytest.mark.django_db
def test_db_server_side_binding_makes_psycopg_prepare_repeated_statements(binding, prepared):
    # Django connects with prepare_threshold=None (never prepare) unless OPTIONS names one: the
    # setting must name it, or "server-side binding" alone prepares nothing (seen in bench/areq.py).
    import os
    import subprocess
    import sys

    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's")
    from tests.conftest import _database_url_for_worker

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "issuer_portal.settings", "DEBUG": "1",
           "DATABASE_URL": _database_url_for_worker(), "DB_SERVER_SIDE_BINDING": binding}
    done = subprocess.run([sys.executable, "-c", PREPARED_AFTER_SIX_RUNS], env=env, capture_output=True, text=True,
                          timeout=120, cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert done.returncode == 0, done.stderr
    assert (int(done.stdout.split()[-1]) > 0) is prepared
