"""What the AReq's short path must keep: duplicates caught by the unique ids (also when racing), the
risk policy read with the card and never stale, the card's history read in the same statement,
the two audit events in one INSERT. No timing here: statements are counted, not timed."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.accounts.roles import ISSUER_ADMIN
from apps.audit.models import AuditEvent
from apps.cards.models import Card
from apps.core.crypto import pan_fingerprint
from apps.issuers.models import pan_prefix_key
from apps.threeds import risk
from apps.threeds.models import Challenge, RiskPolicy, Transaction
from apps.threeds.areq import areq_process
from tests.concurrency import run_parallel
from tests.factories import client_for, make_staff
from tests.factories import make_card
from tests.support.acs import post_areq as post
from tests.support.fixtures import role_groups  # noqa: F401 (autouse fixture)
from tests.test_admin import url
from tests.threeds.builders import areq
from tests.threeds.test_risk_admin import form

PAN = "4111111111111111"


def _top_level(sql: str, keyword: str) -> str:
    """The table after the first `keyword` outside parentheses (a subquery's FROM is inside)."""
    depth, words = 0, []
    for token in sql.replace("(", " ( ").replace(")", " ) ").split():
        depth += token == "("
        depth -= token == ")"
        if depth == 0:
            words.append(token)
    return words[words.index(keyword) + 1].strip(chr(34))


def statement_kinds(queries) -> list[str]:
    kinds = []
    for query in queries:
        verb = query["sql"].split()[0].upper()
        if verb in ("SELECT", "INSERT"):
            kinds.append(f"{verb} {_top_level(query['sql'], 'FROM' if verb == 'SELECT' else 'INTO')}")
        else:
            kinds.append(verb)
    return kinds


@pytest.mark.django_db
class TestOneStatementBeforeTheWrites:
    def test_a_frictionless_areq_reads_once_and_writes_twice(self, client, card, issuer):
        RiskPolicy.objects.create(issuer=issuer, new_merchant_weight=0)
        post(client, areq(pan=PAN))  # warm: nothing is created on first use
        with CaptureQueriesContext(connection) as captured:
            ares = post(client, areq(pan=PAN))
        assert ares["transStatus"] == "Y"
        queries = [q for q in captured.captured_queries if q["sql"].split()[0].upper() not in ("SAVEPOINT", "RELEASE")]
        kinds = statement_kinds(queries)
        if connection.vendor == "postgresql":
            # The writes are one statement: the transaction INSERT as a WITH clause of the events' INSERT.
            assert kinds == ["SELECT cards_card", "WITH"], kinds
            write = queries[1]["sql"]
            assert write.index('INSERT INTO "threeds_transaction"') < write.index('INSERT INTO "audit_auditevent"')
        else:
            assert kinds == ["SELECT cards_card", "INSERT threeds_transaction", "INSERT audit_auditevent"], kinds

    def test_a_duplicate_does_the_work_then_answers_the_first_ares_and_writes_nothing(self, client, card, phone, issuer):
        RiskPolicy.objects.create(issuer=issuer, new_merchant_weight=0)
        message = areq(pan=PAN, threeDSRequestorChallengeInd="04")
        first = post(client, message)
        events = AuditEvent.objects.count()
        second = post(client, message)
        assert first == second and first["transStatus"] == "C"
        assert Transaction.objects.count() == 1 and Challenge.objects.count() == 1
        assert AuditEvent.objects.count() == events

    def test_a_duplicate_with_another_pan_still_gets_the_first_ares(self, client, card, cardholder, issuer):
        RiskPolicy.objects.create(issuer=issuer, new_merchant_weight=0)
        make_card(cardholder=cardholder, pan="5555555555554444")
        message = areq(pan=PAN)
        first = post(client, message)
        again = post(client, {**message, "acctNumber": "5555555555554444"})
        assert again == first and Transaction.objects.count() == 1


@pytest.mark.django_db
class TestRiskPolicy:
    def test_an_admin_edit_is_seen_by_the_next_areq(self, client, card, phone, issuer):
        policy = RiskPolicy.objects.create(issuer=issuer, new_merchant_weight=0)
        assert post(client, areq(pan=PAN))["transStatus"] == "Y"
        r = client_for(make_staff(issuer, ISSUER_ADMIN)).post(url(RiskPolicy, "change", policy.pk), form(policy, challenge_threshold=5))
        assert r.status_code == 302, r.content.decode()[:2000]
        ares = post(client, areq(pan=PAN))
        assert ares["transStatus"] == "C"
        assert Transaction.objects.get(acs_trans_id=ares["acsTransID"]).risk_score >= 5

    def test_an_issuer_without_a_policy_gets_the_defaults_once(self, client, card, issuer):
        assert not RiskPolicy.objects.filter(issuer=issuer).exists()
        post(client, areq(pan=PAN))
        post(client, areq(pan=PAN))
        policy = RiskPolicy.objects.get(issuer=issuer)
        assert policy.challenge_threshold == RiskPolicy._meta.get_field("challenge_threshold").default


@pytest.mark.django_db
class TestHistoryWithTheCard:
    def history(self, card, message, now):
        annotated = risk.card_for_areq(fingerprint=pan_fingerprint(PAN), prefix=pan_prefix_key(PAN), areq=message, now=now)
        plain = Card.objects.get(pk=card.pk)
        return annotated, plain

    def make_tx(self, card, *, merchant, status, age):
        tx = Transaction.objects.create(
            issuer=card.issuer, card=card, three_ds_server_trans_id=_uuid(), ds_trans_id=_uuid(), message_version="2.2.0",
            device_channel="02", message_category="01", pan_last4="1111", pan_fingerprint=pan_fingerprint(PAN),
            acquirer_merchant_id=merchant, trans_status=status,
        )
        Transaction.objects.filter(pk=tx.pk).update(created_at=timezone.now() - age)

    @pytest.mark.parametrize("merchant", ["merchant-001", "elsewhere"])
    def test_the_annotated_card_decides_as_the_queries_do(self, card, issuer, merchant):
        policy = RiskPolicy.objects.create(issuer=issuer, velocity_warn_per_hour=2, velocity_max_per_hour=9)
        self.make_tx(card, merchant="merchant-001", status="Y", age=timedelta(hours=3))
        self.make_tx(card, merchant="merchant-001", status="N", age=timedelta(minutes=5))
        self.make_tx(card, merchant="elsewhere", status="C", age=timedelta(minutes=10))
        self.make_tx(card, merchant="merchant-001", status="Y", age=timedelta(minutes=59))
        message = areq(pan=PAN, acquirerMerchantID=merchant)
        now = timezone.now()
        annotated, plain = self.history(card, message, now)
        assert annotated.risk_recent_count == 3
        fast = risk.decide(policy=policy, card=annotated, areq=message, now=now)
        slow = risk.decide(policy=policy, card=plain, areq=message, now=now)
        assert fast == slow
        rules = [r["rule"] for r in fast.rules]
        assert "velocity_high" in rules
        assert ("new_merchant_for_card" in rules) == (merchant == "elsewhere")

    def test_a_card_without_history_counts_zero(self, card, issuer):
        annotated, _ = self.history(card, areq(pan=PAN), timezone.now())
        assert annotated.risk_recent_count == 0 and annotated.risk_merchant_known_id is None


@pytest.mark.django_db(transaction=True)
class TestRacingTwins:
    @pytest.fixture(autouse=True)
    def postgres_only(self):
        if connection.vendor != "postgresql":
            pytest.skip("concurrency is tested on PostgreSQL")

    @pytest.mark.parametrize("indicator", ["01", "04"])
    def test_identical_areqs_at_once_make_one_transaction_and_get_one_ares(self, card, phone, issuer, indicator):
        RiskPolicy.objects.create(issuer=issuer, new_merchant_weight=0)
        message = areq(pan=PAN, threeDSRequestorChallengeInd=indicator)
        outcomes = run_parallel(6, lambda i: areq_process(dict(message)))
        answers = [o.response for o in outcomes]
        assert all(a == answers[0] for a in answers), answers
        assert answers[0]["transStatus"] == ("C" if indicator == "04" else "Y")
        assert sum(not o.duplicate for o in outcomes) == 1
        assert Transaction.objects.count() == 1
        assert Challenge.objects.count() == (1 if indicator == "04" else 0)
        assert AuditEvent.objects.filter(kind__startswith="threeds.").count() == 2


@pytest.mark.django_db
class TestAuditInOneInsert:
    def test_both_events_in_order_scrubbed_in_one_statement(self, client, card, issuer):
        RiskPolicy.objects.create(issuer=issuer, new_merchant_weight=0)
        ares = post(client, areq(pan=PAN))
        events = list(AuditEvent.objects.filter(acs_trans_id=ares["acsTransID"]).order_by("id"))
        assert [e.kind for e in events] == ["threeds.areq_received", "threeds.ares_sent"]
        assert events[0].created_at <= events[1].created_at
        assert [e.kind for e in AuditEvent.objects.filter(acs_trans_id=ares["acsTransID"])] == ["threeds.ares_sent", "threeds.areq_received"]
        assert PAN not in str([e.data for e in events])


def _uuid():
    import uuid

    return uuid.uuid4()
