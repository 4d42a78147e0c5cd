"""The OTP policy as a form: countries by name, a text per locale with its placeholders checked,
senders per country, the SPEC bounds, a reason per change; versions with their diff and history."""

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import translation

from apps.accounts.roles import ANALYST, ISSUER_ADMIN
from apps.audit.models import AuditEvent
from apps.otp.models import OtpPolicy, OtpPolicyVersion
from apps.otp.policy_words import otp_policy_changes
from apps.otp.services import otp_policy_create_default
from tests.factories import client_for, make_staff, make_superuser
from tests.support.fixtures import role_groups  # noqa: F401 (autouse fixture)
from tests.test_admin import url

pytestmark = pytest.mark.django_db


@pytest.fixture
def policies(issuer, other_issuer):
    return otp_policy_create_default(issuer=issuer).policy, otp_policy_create_default(issuer=other_issuer).policy


@pytest.fixture
def boss(issuer):
    return client_for(make_staff(issuer, ISSUER_ADMIN, username="boss"))


def form(policy, *, senders=(), reason="Add France for travellers", **overrides):
    rows = list(senders) + [("", "")]
    data = {
        "issuer": str(policy.issuer_id), "product": "", "delivery_mode": policy.delivery_mode,
        "code_length": policy.code_length, "lifetime_seconds": policy.lifetime_seconds, "max_attempts": policy.max_attempts,
        "max_resends": policy.max_resends, "resend_cooldown_seconds": policy.resend_cooldown_seconds,
        "allowed_countries": list(policy.allowed_countries), "max_sends_per_card_hour": policy.max_sends_per_card_hour,
        "max_sends_per_card_day": policy.max_sends_per_card_day, "max_sends_per_phone_day": policy.max_sends_per_phone_day,
        "sms_template_en": policy.sms_templates.get("en", ""), "sms_template_ja": policy.sms_templates.get("ja", ""),
        "sms_template_fr": policy.sms_templates.get("fr", ""),
        "sender_ids_key": [c for c, _ in rows], "sender_ids_value": [v for _, v in rows], "reason": reason,
    }
    data.update(overrides)
    return data


def test_countries_senders_and_texts_are_saved_as_a_new_version_with_its_reason(issuer, policies, boss):
    mine, _ = policies
    r = boss.post(url(OtpPolicy, "change", mine.pk), form(
        mine, allowed_countries=["JP", "FR"], senders=[("FR", "MYBANK"), ("default", "+815012345678")],
        sms_template_fr="", max_attempts=5))
    assert r.status_code == 302, r.content.decode()[:3000]
    mine.refresh_from_db()
    assert mine.version == 2 and sorted(mine.allowed_countries) == ["FR", "JP"] and mine.max_attempts == 5
    assert mine.sender_ids == {"FR": "MYBANK", "default": "+815012345678"}
    assert set(mine.sms_templates) == {"en", "ja"}  # the French text removed: the English one is used
    version = OtpPolicyVersion.objects.get(policy=mine, version=2)
    assert (version.reason, version.created_by) == ("Add France for travellers", "staff:boss")
    changes = AuditEvent.objects.filter(kind="otp_policy.saved", issuer=issuer).latest("id").data["changes"]
    assert "Wrong codes allowed: 3 → 5" in changes
    assert "Countries SMS may go to: Japan → France, Japan" in changes
    assert "Sender for France: none → MYBANK" in changes


def test_the_form_lists_countries_by_name(policies, boss):
    mine, _ = policies
    page = boss.get(url(OtpPolicy, "change", mine.pk)).content.decode()
    assert '<option value="JP" selected>Japan</option>' in page
    assert 'name="sms_template_ja"' in page and 'name="sms_templates"' not in page


@pytest.mark.parametrize("overrides, field, message", [
    ({"code_length": 9}, "code_length", "Must be between 6 and 8."),
    ({"lifetime_seconds": 30}, "lifetime_seconds", "Must be between 60 and 600."),
    ({"max_resends": 6}, "max_resends", "Must be between 0 and 5."),
    ({"sms_template_ja": "認証コードです"}, "sms_template_ja", "Must contain {code}"),
    ({"sms_template_en": "{code} for {shop}"}, "sms_template_en", "Unknown placeholders: {shop}"),
    ({"sms_template_en": "{code"}, "sms_template_en", "Unbalanced braces"),
    ({"allowed_countries": ["XX"]}, "allowed_countries", "not one of the available choices"),
    ({"sender_ids_key": ["FR"], "sender_ids_value": ["A" * 17]}, "sender_ids", "at most 16 characters"),
    ({"reason": ""}, "reason", "Say why the policy changes"),
])
def test_bad_values_are_refused_on_their_field(policies, boss, overrides, field, message):
    mine, _ = policies
    r = boss.post(url(OtpPolicy, "change", mine.pk), form(mine, **overrides))
    assert r.status_code == 200
    errors = r.context["adminform"].form.errors
    assert field in errors and any(message in e for e in errors[field]), errors
    mine.refresh_from_db()
    assert mine.version == 1


def test_the_history_shows_each_version_with_its_changes(issuer, policies, boss):
    mine, _ = policies
    boss.post(url(OtpPolicy, "change", mine.pk), form(mine, max_attempts=4, reason="Fewer lock-outs"))
    page = boss.get(reverse("admin:otp_otppolicy_history", args=[mine.pk]))
    text = page.content.decode()
    assert page.status_code == 200 and "Fewer lock-outs" in text
    assert "Wrong codes allowed: <del>3</del> → <ins>4</ins>" in text and "First recorded version." in text


def test_the_diff_in_japanese():
    with translation.override("ja"):
        lines = [str(c) for c in otp_policy_changes({"max_attempts": 3, "allowed_countries": ["JP"]},
                                                   {"max_attempts": 5, "allowed_countries": ["JP", "FR"]})]
    assert lines == ["誤りコードの許容回数: 3 → 5", "SMS 送信を許可する国: 日本 → フランス, 日本"]


@pytest.mark.parametrize("who, expected", [
    ("anonymous", 302), ("analyst", 200), ("issuer_admin", 200), ("other_issuer_admin", 404), ("superuser", 200),
])
def test_role_matrix_for_the_history(issuer, other_issuer, policies, who, expected):
    mine, _ = policies
    client = {
        "anonymous": lambda: Client(),
        "analyst": lambda: client_for(make_staff(issuer, ANALYST, username="analyst")),
        "issuer_admin": lambda: client_for(make_staff(issuer, ISSUER_ADMIN, username="admin")),
        "other_issuer_admin": lambda: client_for(make_staff(other_issuer, ISSUER_ADMIN, username="elsewhere")),
        "superuser": lambda: client_for(make_superuser()),
    }[who]()
    assert client.get(reverse("admin:otp_otppolicy_history", args=[mine.pk])).status_code == expected
    if who == "analyst":  # reads, never writes
        assert client.post(url(OtpPolicy, "change", mine.pk), form(mine, max_attempts=5)).status_code == 403
        page = client.get(url(OtpPolicy, "change", mine.pk))
        assert page.status_code == 200 and "<th scope=\"row\">Wrong codes allowed</th><td>3</td>" in page.content.decode()


def test_two_saves_at_once_get_two_numbers(issuer, policies, transactional_db):
    from django.db import connection

    from apps.otp.services import otp_policy_save
    from tests.concurrency import run_parallel

    if connection.vendor != "postgresql":
        pytest.skip("concurrency is tested on PostgreSQL")
    mine, _ = policies

    def save(i):
        policy = OtpPolicy.objects.get(pk=mine.pk)
        policy.max_attempts = 1 + i
        return otp_policy_save(policy=policy, actor=f"staff:editor{i}", reason=f"editor {i}").version

    assert sorted(run_parallel(4, save)) == [2, 3, 4, 5]
    assert sorted(OtpPolicyVersion.objects.filter(policy=mine).values_list("version", flat=True)) == [1, 2, 3, 4, 5]
