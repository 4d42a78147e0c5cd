import pytest
from django.core.exceptions import ValidationError

from apps.otp.models import BOUNDS, OtpPolicy, OtpPolicyVersion
from apps.otp.services import otp_policy_save, otp_policy_version_for
from tests.factories import CardProductFactory, make_card

pytestmark = pytest.mark.django_db


def test_defaults_follow_the_spec(policy):
    assert (policy.code_length, policy.lifetime_seconds, policy.max_attempts, policy.max_resends, policy.resend_cooldown_seconds) == (6, 300, 3, 3, 30)
    assert (policy.max_sends_per_card_hour, policy.max_sends_per_card_day, policy.max_sends_per_phone_day) == (5, 10, 10)
    assert policy.allowed_countries == ["JP"]
    assert set(policy.sms_templates) >= {"en", "ja", "fr"}


@pytest.mark.parametrize("field", list(BOUNDS))
def test_each_setting_is_bounded(policy, field):
    _, low, high = BOUNDS[field]
    for bad in (low - 1, high + 1):
        if bad < 0:
            continue
        setattr(policy, field, bad)
        with pytest.raises(ValidationError) as exc:
            otp_policy_save(policy=policy, actor="tests")
        assert field in exc.value.message_dict
    setattr(policy, field, high)
    otp_policy_save(policy=policy, actor="tests")


@pytest.mark.parametrize(
    "templates, message",
    [
        ({"en": "Your code"}, "Must contain {code}"),
        ({"en": "{code} {secret}"}, "Unknown placeholders"),
        ({"en": "{code"}, "Unbalanced"),
        ({"en": "{code}" + "x" * 400}, "longer than 320"),
        (["{code}"], "locale"),
    ],
)
def test_templates_must_be_usable(policy, templates, message):
    policy.sms_templates = templates
    with pytest.raises(ValidationError) as exc:
        otp_policy_save(policy=policy, actor="tests")
    assert message in " ".join(exc.value.message_dict["sms_templates"])


@pytest.mark.parametrize("countries", [["jp"], ["JPN"], "JP", [1]])
def test_countries_are_iso_alpha2(policy, countries):
    policy.allowed_countries = countries
    with pytest.raises(ValidationError):
        otp_policy_save(policy=policy, actor="tests")


def test_every_save_is_a_new_frozen_version(policy):
    assert policy.version == 1
    policy.max_attempts = 5
    v2 = otp_policy_save(policy=policy, actor="ops")
    assert v2.version == 2 and v2.rules.max_attempts == 5 and v2.created_by == "ops"
    assert OtpPolicyVersion.objects.get(policy=policy, version=1).rules.max_attempts == 3


def test_a_product_override_wins_over_the_issuer_default(issuer, policy, cardholder):
    product = CardProductFactory(issuer=issuer)
    override = OtpPolicy(issuer=issuer, product=product, code_length=8, allowed_countries=["JP"], sms_templates={"en": "{code}"})
    otp_policy_save(policy=override, actor="tests")
    in_product = make_card(cardholder=cardholder, product=product)
    plain = make_card(cardholder=cardholder)
    assert otp_policy_version_for(card=in_product).rules.code_length == 8
    assert otp_policy_version_for(card=plain).rules.code_length == 6


def test_an_override_for_another_issuers_product_is_refused(issuer, other_issuer):
    product = CardProductFactory(issuer=other_issuer)
    with pytest.raises(ValidationError):
        otp_policy_save(policy=OtpPolicy(issuer=issuer, product=product, allowed_countries=["JP"]), actor="tests")


def test_every_new_issuer_gets_its_default_policy_from_apps_otp():
    # issuer_create sends issuer_created; apps.otp (OtpConfig.ready) makes the default policy.
    from apps.issuers.services import issuer_create

    issuer, _ = issuer_create(issuer_id="NEWBANK001", name="New Bank", country="fr")
    policy = OtpPolicy.objects.get(issuer=issuer, product__isnull=True)
    assert (policy.allowed_countries, policy.delivery_mode, policy.version) == (["FR"], "provider", 1)
    issuer, _ = issuer_create(
        issuer_id="NEWBANK002", name="Other Bank", deliver_otp_url="https://bank.example/otp", otp_delivery="issuer"
    )
    assert OtpPolicy.objects.get(issuer=issuer, product__isnull=True).delivery_mode == "issuer"


def test_an_issuer_whose_default_policy_fails_is_not_created(monkeypatch):
    # Same transaction: no issuer left without its policy.
    from apps.issuers.models import Issuer
    from apps.issuers.services import issuer_create
    from apps.otp import services as otp_services

    def refuse(**kwargs):
        raise RuntimeError("policy refused")

    monkeypatch.setattr(otp_services, "otp_policy_save", refuse)
    with pytest.raises(RuntimeError):
        issuer_create(issuer_id="NEWBANK003", name="New Bank")
    assert not Issuer.objects.filter(issuer_id="NEWBANK003").exists()
