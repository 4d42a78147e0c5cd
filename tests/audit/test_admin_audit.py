"""Every write in the Django admin goes through the services and leaves an audit event naming
the staff user (issue 11). Pages are driven over HTTP as a browser would: the form is read from
the rendered page, changed and posted back."""

import json
import re
import secrets
from datetime import date
from html.parser import HTMLParser

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured
from django.test import Client, RequestFactory
from django.urls import reverse

from apps.accounts.models import User
from apps.accounts.roles import ANALYST, ISSUER_ADMIN, OPERATOR
from apps.audit.models import AuditEvent
from apps.cards import services as card_services
from apps.cards.models import BinRange, Card, Cardholder, CardProduct, Phone
from apps.core.admin_scoping import ServiceAdminMixin, ServiceFormMixin
from apps.devices.models import PUSH_FCM, Device
from apps.issuers.models import ApiKey, Issuer
from apps.otp.models import OtpPolicy
from apps.otp.services import otp_policy_create_default
from apps.sms.models import SmsProviderConfig
from apps.threeds.models import RiskPolicy
from tests.factories import CardholderFactory, client_for, make_staff, make_superuser, new_pan
from tests.support.fixtures import role_groups  # noqa: F401 (autouse fixture)

pytestmark = pytest.mark.django_db

NEXT_YEAR = date.today().year + 1
BOSS, ROOT = "staff:boss", "staff:root"


@pytest.fixture
def boss(issuer) -> Client:
    """An issuer admin of `issuer`: may write everything of its issuer the admin allows."""
    return client_for(make_staff(issuer, ISSUER_ADMIN, username="boss"))


@pytest.fixture
def root(db) -> Client:
    return client_for(make_superuser())


def url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


class _FormReader(HTMLParser):
    """What a browser would submit from the page's main form: enabled fields with their values."""

    def __init__(self, form_id: str):
        super().__init__()
        self.form_id, self.inside, self.data = form_id, False, {}
        self._select = self._textarea = None
        self._first_option = None

    def _add(self, name, value):
        self.data.setdefault(name, []).append(value)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and a.get("id") == self.form_id:
            self.inside = True
        if not self.inside or "disabled" in a:
            return
        if tag == "input" and a.get("name"):
            kind = a.get("type", "text")
            if kind in ("submit", "button", "image", "file"):
                return
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self._add(a["name"], a.get("value", "on"))
            else:
                self._add(a["name"], a.get("value", ""))
        elif tag == "select" and a.get("name"):
            self._select, self._first_option = a, None
            self._select["selected"] = []
        elif tag == "option" and self._select is not None:
            if self._first_option is None:
                self._first_option = a.get("value", "")
            if "selected" in a:
                self._select["selected"].append(a.get("value", ""))
        elif tag == "textarea" and a.get("name"):
            self._textarea = [a["name"], ""]

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea[1] += data

    def handle_endtag(self, tag):
        if tag == "form" and self.inside:
            self.inside = False
        elif tag == "select" and self._select is not None:
            chosen = self._select["selected"]
            if not chosen and "multiple" not in self._select and self._first_option is not None:
                chosen = [self._first_option]
            for value in chosen:
                self._add(self._select["name"], value)
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            self._add(self._textarea[0], self._textarea[1].removeprefix("\n"))
            self._textarea = None


def page_form(client, page_url: str, model) -> dict:
    response = client.get(page_url)
    assert response.status_code == 200
    reader = _FormReader(f"{model._meta.model_name}_form")
    reader.feed(response.content.decode())
    data = {k: v if len(v) > 1 else v[0] for k, v in reader.data.items()}
    data["_save"] = "Save"
    return data


def saved(response) -> None:
    """The admin accepted the page (a redirect, or a page showing a new secret once)."""
    context = response.context or {}
    errors = context.get("errors") if hasattr(context, "get") else None
    assert response.status_code in (200, 302), response.status_code
    assert response.status_code == 302 or "webhook_secret" in context or "plaintext_key" in context, errors


def event(kind: str, actor: str, obj=None, **filters) -> AuditEvent:
    """The one event of this kind by this actor (about obj); its data holds no PAN and no OTP."""
    if obj is not None:
        filters["object_id"] = str(obj.pk)
    found = AuditEvent.objects.get(kind=kind, actor=actor, **filters)
    text = json.dumps(found.data)
    assert not re.search(r"(?<!\d)\d{13,19}(?!\d)", text), text  # nothing shaped like a PAN
    assert not any(key in ("otp", "code", "pan") for key in _keys(found.data)), text
    return found


def _keys(value):
    if isinstance(value, dict):
        for key, inner in value.items():
            yield key
            yield from _keys(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _keys(inner)


def management(prefix: str, total: int, initial: int = 0) -> dict:
    return {f"{prefix}-TOTAL_FORMS": str(total), f"{prefix}-INITIAL_FORMS": str(initial),
            f"{prefix}-MIN_NUM_FORMS": "0", f"{prefix}-MAX_NUM_FORMS": "1000"}


def delete(client, model, obj):
    response = client.post(url(model, "delete", obj.pk), {"post": "yes"})
    assert response.status_code == 302, response.status_code
    assert not model.objects.filter(pk=obj.pk).exists()


# ---------------------------------------------------------------- cardholders and phones


def test_cardholder_added_with_a_phone_is_audited(boss, issuer):
    response = boss.post(url(Cardholder, "add"), {
        "external_id": "cust-admin", "name": "Hanako Yamada", "locale": "ja", **management("phones", 1),
        "phones-0-number": "+819011112222", "phones-0-is_primary": "on",
    })
    saved(response)
    cardholder = Cardholder.objects.get(external_id="cust-admin")
    assert cardholder.issuer == issuer
    assert event("cardholder.created", BOSS, cardholder).data["external_id"] == "cust-admin"
    phone = cardholder.phones.get()
    assert event("phone.created", BOSS, phone).data["primary"] is True


def test_cardholder_and_phone_changes_are_audited(boss, issuer):
    cardholder = CardholderFactory(issuer=issuer, name="Old Name")
    phone = card_services.phone_create(cardholder=cardholder, number="+819012345678", is_primary=True, verified=False, actor="tests")
    data = page_form(boss, url(Cardholder, "change", cardholder.pk), Cardholder)
    data.update({"name": "New Name", "phones-0-verified": "on"})
    saved(boss.post(url(Cardholder, "change", cardholder.pk), data))

    assert event("cardholder.updated", BOSS, cardholder).data["fields"] == ["name"]
    changed = event("phone.updated", BOSS, phone).data
    assert changed["before"] == {"verified": False} and changed["after"] == {"verified": True}
    phone.refresh_from_db()
    assert phone.verified


def test_phone_removed_on_the_cardholder_page_is_audited(boss, issuer):
    cardholder = CardholderFactory(issuer=issuer)
    phone = card_services.phone_create(cardholder=cardholder, number="+819012345678", is_primary=True, verified=True, actor="tests")
    data = page_form(boss, url(Cardholder, "change", cardholder.pk), Cardholder)
    data["phones-0-DELETE"] = "on"
    saved(boss.post(url(Cardholder, "change", cardholder.pk), data))
    assert not Phone.objects.filter(pk=phone.pk).exists()
    assert event("phone.deleted", BOSS).data["phone_id"] == str(phone.pk)


def test_cardholders_deleted_one_by_one_or_in_bulk_are_audited(boss, issuer):
    one, two, three = (CardholderFactory(issuer=issuer) for _ in range(3))
    delete(boss, Cardholder, one)
    response = boss.post(url(Cardholder, "changelist"), {
        "action": "delete_selected", "_selected_action": [str(two.pk), str(three.pk)], "post": "yes",
    })
    assert response.status_code == 302
    deleted = {e.data["cardholder"] for e in AuditEvent.objects.filter(kind="cardholder.deleted", actor=BOSS)}
    assert deleted == {str(one.pk), str(two.pk), str(three.pk)}


def test_a_refused_page_writes_nothing_and_shows_why(boss, issuer):
    """Two primary phones: refused on the form; the cardholder's change on the same page is not kept."""
    cardholder = CardholderFactory(issuer=issuer, name="Kept")
    response = boss.post(url(Cardholder, "change", cardholder.pk), {
        "external_id": cardholder.external_id, "name": "Not kept", "locale": "en", **management("phones", 2),
        "phones-0-number": "+819011112222", "phones-0-is_primary": "on",
        "phones-1-number": "+819011113333", "phones-1-is_primary": "on",
    })
    assert response.status_code == 200
    assert "at most one primary phone" in response.content.decode()
    cardholder.refresh_from_db()
    assert cardholder.name == "Kept" and not cardholder.phones.exists()
    assert not AuditEvent.objects.filter(actor=BOSS).exists()


# ---------------------------------------------------------------- cards


def test_card_added_changed_and_deleted_is_audited_without_its_pan(boss, issuer):
    cardholder = CardholderFactory(issuer=issuer)
    pan = new_pan("41111")  # inside the issuer fixture's grant 411110-411119
    saved(boss.post(url(Card, "add"), {
        "card_id": "card-admin", "cardholder": str(cardholder.pk), "product": "", "pan": pan,
        "expiry_month": "12", "expiry_year": str(NEXT_YEAR),
    }))
    card = Card.objects.get(card_id="card-admin")
    assert event("card.created", BOSS, card).data["last4"] == pan[-4:]

    data = page_form(boss, url(Card, "change", card.pk), Card)
    data["status"] = "suspended"
    saved(boss.post(url(Card, "change", card.pk), data))
    assert event("card.updated", BOSS, card).data["after"] == {"status": "suspended"}

    delete(boss, Card, card)
    assert event("card.deleted", BOSS).data["card_id"] == "card-admin"
    assert pan not in json.dumps(list(AuditEvent.objects.values_list("data", flat=True)))


# ---------------------------------------------------------------- card products


def test_card_product_added_changed_and_deleted_is_audited(boss, issuer):
    saved(boss.post(url(CardProduct, "add"), {
        "name": "Gold", "network": "visa", "co_badge": "", **management("bin_ranges", 1),
        "bin_ranges-0-start": "411110", "bin_ranges-0-end": "411119",
    }))
    product = CardProduct.objects.get(name="Gold")
    assert product.issuer == issuer
    created = event("card_product.created", BOSS, product).data
    assert created["bin_ranges"] == [{"start": "411110", "end": "411119"}]

    data = page_form(boss, url(CardProduct, "change", product.pk), CardProduct)
    data.update({"name": "Platinum", "bin_ranges-0-end": "411115"})
    saved(boss.post(url(CardProduct, "change", product.pk), data))
    assert event("card_product.updated", BOSS, product).data["fields"] == ["bin_ranges", "name"]
    assert list(product.bin_ranges.values_list("start", "end")) == [("411110", "411115")]

    delete(boss, CardProduct, product)
    assert event("card_product.deleted", BOSS).data["name"] == "Platinum"
    assert not BinRange.objects.exists()


def test_overlapping_bin_range_is_refused_on_the_form(boss, issuer):
    card_services.card_product_create(
        issuer=issuer, name="Classic", network="visa", bin_ranges=[{"start": "411110", "end": "411119"}], actor="tests"
    )
    response = boss.post(url(CardProduct, "add"), {
        "name": "Gold", "network": "visa", "co_badge": "", **management("bin_ranges", 1),
        "bin_ranges-0-start": "411115", "bin_ranges-0-end": "411116",
    })
    assert response.status_code == 200
    assert "Overlaps Classic" in response.content.decode()
    assert not CardProduct.objects.filter(name="Gold").exists()
    assert not AuditEvent.objects.filter(actor=BOSS).exists()


# ---------------------------------------------------------------- API keys


def test_api_key_added_renamed_and_revoked_is_audited(boss, issuer):
    response = boss.post(url(ApiKey, "add"), {"name": "acquiring"})
    saved(response)
    api_key = ApiKey.objects.get(name="acquiring")
    assert event("api_key.created", BOSS).data["prefix"] == api_key.prefix
    plaintext = response.context["plaintext_key"]
    # The secret is everything after "ik_<prefix>_" (it may itself contain "_"): a piece cut at the
    # last "_" could be one character and match any event.
    secret = plaintext.removeprefix(f"ik_{api_key.prefix}_")
    assert len(secret) >= 32
    assert not AuditEvent.objects.filter(data__icontains=secret).exists()

    data = page_form(boss, url(ApiKey, "change", api_key.pk), ApiKey)
    data["name"] = "acquiring-2"
    saved(boss.post(url(ApiKey, "change", api_key.pk), data))
    assert event("api_key.renamed", BOSS, api_key).data == {"prefix": api_key.prefix, "before": "acquiring", "after": "acquiring-2"}

    boss.post(url(ApiKey, "changelist"), {"action": "revoke_keys", "_selected_action": [str(api_key.pk)]})
    assert event("api_key.revoked", BOSS).data["prefix"] == api_key.prefix


# ---------------------------------------------------------------- SMS provider accounts

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2


def test_sms_provider_added_changed_and_deleted_is_audited_without_its_token(boss, issuer):
    token = "tok" + secrets.token_hex(12)
    saved(boss.post(url(SmsProviderConfig, "add"), {
        "role": "primary", "backend": "twilio", "is_active": "on", "account_sid": ACCOUNT_SID,
        "auth_token": token, "from_number": "+15005550006", "messaging_service_sid": "",
    }))
    config = SmsProviderConfig.objects.get(issuer=issuer)
    assert config.get_auth_token() == token
    assert event("sms_provider.created", BOSS, config).data["auth_token_set"] is True

    data = page_form(boss, url(SmsProviderConfig, "change", config.pk), SmsProviderConfig)
    data.pop("is_active")  # unticked
    saved(boss.post(url(SmsProviderConfig, "change", config.pk), data))
    updated = event("sms_provider.updated", BOSS, config).data
    assert updated["fields"] == ["is_active"] and updated["auth_token_changed"] is False

    delete(boss, SmsProviderConfig, config)
    event("sms_provider.deleted", BOSS)
    assert token not in json.dumps(list(AuditEvent.objects.values_list("data", flat=True)))


def test_sms_provider_refusal_shows_on_the_form(boss, issuer):
    response = boss.post(url(SmsProviderConfig, "add"), {
        "role": "primary", "backend": "twilio", "is_active": "on", "account_sid": "AC123",
        "auth_token": "", "from_number": "", "messaging_service_sid": "",
    })
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert set(form.errors) >= {"account_sid", "from_number", "auth_token"}
    assert not SmsProviderConfig.objects.exists()


# ---------------------------------------------------------------- devices


def make_device(issuer) -> Device:
    return Device.objects.create(
        issuer=issuer, cardholder=CardholderFactory(issuer=issuer), name="Pixel 9", credential_id=secrets.token_bytes(32),
        public_key=secrets.token_bytes(77), attestation_format="none", push_platform=PUSH_FCM,
        token_hash=secrets.token_hex(32),
    )


def test_device_renamed_revoked_and_deleted_is_audited(boss, issuer):
    device = make_device(issuer)
    data = page_form(boss, url(Device, "change", device.pk), Device)
    data["name"] = "Work phone"
    saved(boss.post(url(Device, "change", device.pk), data))
    assert event("device.renamed", BOSS, device).data["after"] == "Work phone"

    boss.post(url(Device, "changelist"), {"action": "revoke_devices", "_selected_action": [str(device.pk)]})
    event("device.revoked", BOSS, device)

    delete(boss, Device, device)
    assert event("device.deleted", BOSS).data["device"] == str(device.pk)


# ---------------------------------------------------------------- policies


def test_risk_policy_added_and_changed_is_audited(boss, issuer):
    data = page_form(boss, url(RiskPolicy, "add"), RiskPolicy)
    data["challenge_threshold"] = "55"
    data["reason"] = "first policy"
    saved(boss.post(url(RiskPolicy, "add"), data))
    policy = RiskPolicy.objects.get(issuer=issuer)
    assert policy.challenge_threshold == 55
    assert "challenge_threshold" in event("risk_policy.saved", BOSS, policy).data["fields"]

    data = page_form(boss, url(RiskPolicy, "change", policy.pk), RiskPolicy)
    data["base_score"] = "20"
    data["reason"] = "base score up"
    saved(boss.post(url(RiskPolicy, "change", policy.pk), data))
    assert AuditEvent.objects.filter(kind="risk_policy.saved", actor=BOSS, data__fields=["base_score"]).exists()


def test_otp_policy_change_is_audited(boss, issuer):
    otp_policy_create_default(issuer=issuer)
    policy = OtpPolicy.objects.get(issuer=issuer)
    data = page_form(boss, url(OtpPolicy, "change", policy.pk), OtpPolicy)
    data["code_length"] = "8"
    data["reason"] = "longer codes"
    saved(boss.post(url(OtpPolicy, "change", policy.pk), data))
    policy.refresh_from_db()
    assert policy.code_length == 8 and policy.updated_by == BOSS
    assert event("otp_policy.saved", BOSS, policy).data["settings"]["code_length"] == 8


# ---------------------------------------------------------------- issuers and staff users (superusers)


def test_issuer_added_and_changed_is_audited_and_never_deleted(root):
    saved(root.post(url(Issuer, "add"), {
        "issuer_id": "ISSADMIN01", "name": "Admin Bank", "country": "jp", "notification_base_url": "",
        "deliver_otp_url": "", "webauthn_rp_id": "", "webauthn_origins": "[]",
    }))
    issuer = Issuer.objects.get(issuer_id="ISSADMIN01")
    assert event("issuer.created", ROOT).issuer == issuer

    data = page_form(root, url(Issuer, "change", issuer.pk), Issuer)
    data["name"] = "Renamed Bank"
    saved(root.post(url(Issuer, "change", issuer.pk), data))
    changed = event("issuer.updated", ROOT, issuer).data
    assert changed["before"] == {"name": "Admin Bank"} and changed["after"] == {"name": "Renamed Bank"}

    # Its audit trail refers to it: an issuer is never removed.
    assert root.post(url(Issuer, "delete", issuer.pk), {"post": "yes"}).status_code == 403
    assert Issuer.objects.filter(pk=issuer.pk).exists()


def test_staff_user_added_changed_and_deleted_is_audited(root, issuer):
    password = "Correct-Horse-" + secrets.token_hex(6)
    saved(root.post(url(User, "add"), {
        "username": "clerk", "usable_password": "true", "password1": password, "password2": password,
        "issuer": str(issuer.pk), "groups": [str(Group.objects.get(name=OPERATOR).pk)], "is_staff": "on",
    }))
    clerk = User.objects.get(username="clerk")
    assert clerk.check_password(password) and clerk.issuer == issuer
    created = event("staff_user.created", ROOT, clerk, issuer=issuer).data
    assert created["groups"] == [OPERATOR] and created["usable_password"] is True

    data = page_form(root, url(User, "change", clerk.pk), User)
    data["groups"] = [str(Group.objects.get(name=ANALYST).pk)]
    saved(root.post(url(User, "change", clerk.pk), data))
    changed = event("staff_user.updated", ROOT, clerk).data
    assert changed["before"] == {"groups": [OPERATOR]} and changed["after"] == {"groups": [ANALYST]}

    new_password = "Battery-Staple-" + secrets.token_hex(6)
    response = root.post(reverse("admin:auth_user_password_change", args=[clerk.pk]), {"usable_password": "true", "password1": new_password, "password2": new_password})
    assert response.status_code == 302
    clerk.refresh_from_db()
    assert clerk.check_password(new_password)
    assert event("staff_user.password_set", ROOT, clerk).data["usable_password"] is True

    delete(root, User, clerk)
    assert event("staff_user.deleted", ROOT, issuer=issuer).data["username"] == "clerk"
    everything = json.dumps(list(AuditEvent.objects.values_list("data", flat=True)))
    assert password not in everything and new_password not in everything


# ---------------------------------------------------------------- no admin can write around the services

# Models whose admin only reads: what the system records (events, deliveries, sessions, tries).
READ_ONLY = {
    "auth.group", "audit.auditevent", "cards.phone", "oob.authnrequest", "otp.otpsession", "otp.otprefusal", "push.pushdelivery",
    "sms.smsdelivery", "threeds.transaction", "threeds.rreqdelivery", "webhooks.webhookdelivery",
    "axes.accessattempt", "threeds.acssigningkey",
}
# The platform's task schedule (django-celery-beat): no issuer's data, so no issuer to file an
# audit event under; only superusers reach it, and Django's admin log records their changes.
PLATFORM = {
    "django_celery_beat.periodictask", "django_celery_beat.clockedschedule", "django_celery_beat.crontabschedule",
    "django_celery_beat.solarschedule", "django_celery_beat.intervalschedule",
}
# Admin actions other than delete_selected, each calling a service per object.
SERVICE_ACTIONS = {"revoke_devices", "revoke_keys", "retry_now"}


def _registered_admins():
    for model in apps.get_models():
        try:
            yield model, admin.site.get_model_admin(model)
        except admin.sites.NotRegistered:
            continue


def test_every_admin_that_writes_goes_through_the_services(issuer):
    request = RequestFactory().get("/admin/")
    request.user = User.objects.create_superuser(username="meta", password="x", email="meta@example.com")
    issuer_staff = RequestFactory().get("/admin/")
    issuer_staff.user = User.objects.create_user(username="meta-staff", password="x", is_staff=True, issuer=issuer)
    issuer_staff.user.groups.add(Group.objects.get(name=ISSUER_ADMIN))
    seen = set()
    for model, model_admin in _registered_admins():
        label = model._meta.label_lower
        seen.add(label)
        if label in PLATFORM:
            assert not any(
                check(issuer_staff) for check in
                (model_admin.has_add_permission, model_admin.has_change_permission, model_admin.has_delete_permission)
            ), f"{label}: only superusers may change the platform's schedule"
            continue
        adds, changes = model_admin.has_add_permission(request), model_admin.has_change_permission(request)
        deletes = model_admin.has_delete_permission(request)
        if label in READ_ONLY:
            assert not (adds or changes or deletes), f"{label} is listed read-only but its admin writes"
            continue
        # Saving: only ServiceAdminMixin's save_model/save_related, which take no form but a service form.
        assert isinstance(model_admin, ServiceAdminMixin), f"{label}: a writing admin must use ServiceAdminMixin"
        cls = type(model_admin)
        assert cls.save_model is ServiceAdminMixin.save_model, f"{label} overrides save_model"
        assert cls.save_related is ServiceAdminMixin.save_related, f"{label} overrides save_related"
        assert cls.save_formset is admin.ModelAdmin.save_formset, f"{label} overrides save_formset"
        assert cls.delete_queryset is ServiceAdminMixin.delete_queryset, f"{label}: bulk deletes go one by one"
        if adds:
            assert issubclass(model_admin.get_form(request), ServiceFormMixin), f"{label}: add form is not a service form"
        if deletes:
            assert cls.delete_model is not ServiceAdminMixin.delete_model, f"{label}: deletes need a service"
        extra_actions = set(model_admin.get_actions(request)) - {"delete_selected"}
        assert extra_actions <= SERVICE_ACTIONS, f"{label}: unknown admin action {extra_actions - SERVICE_ACTIONS}"
    assert READ_ONLY <= seen


def test_a_write_admin_without_a_service_form_fails_instead_of_writing(issuer):
    from django import forms

    class PlainForm(forms.ModelForm):
        class Meta:
            model = Cardholder
            fields = ["issuer", "external_id", "name", "locale"]

    form = PlainForm({"issuer": issuer.pk, "external_id": "x", "name": "x", "locale": "en"})
    assert form.is_valid()
    model_admin = admin.site.get_model_admin(Cardholder)
    with pytest.raises(ImproperlyConfigured):
        model_admin.save_model(None, form.instance, form, False)
    assert not Cardholder.objects.filter(external_id="x").exists()


def test_a_refusal_after_a_write_rolls_the_whole_page_back(issuer):
    """A service that refuses after another already wrote (say a phone after its cardholder):
    nothing of the page is kept, and the refusal is a form error."""
    from apps.cards.admin import CardholderForm
    from apps.core.exceptions import Conflict

    class RefusingLast(CardholderForm):
        request = RequestFactory().post("/admin/")
        request.user = User.objects.create_superuser(username="refusing", password="x", email="r@example.com")

        def run_service(self):
            super().run_service()
            raise Conflict("Refused after a write.", code="refused", fields={"name": ["Not this name."]})

    form = RefusingLast({"issuer": issuer.pk, "external_id": "cust-rolled-back", "name": "x", "locale": "en"})
    assert not form.is_valid()
    assert form.errors["name"] == ["Not this name."]
    assert not Cardholder.objects.filter(external_id="cust-rolled-back").exists()
    assert not AuditEvent.objects.filter(kind="cardholder.created").exists()


def test_the_once_only_secret_pages_read_in_japanese(boss, root, issuer):
    """A Japanese staff member is told in Japanese that the key and the secret are shown only once."""
    boss.cookies["django_language"] = root.cookies["django_language"] = "ja"
    page = boss.post(url(ApiKey, "add"), {"name": "acquiring"}, HTTP_ACCEPT_LANGUAGE="ja").content.decode()
    assert "表示されるのはこの一度だけです" in page and "APIキー一覧に戻る" in page
    page = root.post(reverse("admin:issuers_issuer_rotate_webhook_secret", args=[issuer.pk]), HTTP_ACCEPT_LANGUAGE="ja").content.decode()
    assert "表示されるのはこの一度だけです" in page and "Webhook署名シークレット" in page
