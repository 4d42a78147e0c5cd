"""The Django admin for issuer staff: roles, tenancy, write-only PAN, secrets shown once."""

import re
from datetime import date

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client
from django.urls import reverse

from apps.accounts.models import User
from apps.accounts.roles import ANALYST, ISSUER_ADMIN, OPERATOR, ROLES
from apps.audit.models import AuditEvent
from apps.audit.services import audit_record
from apps.cards import services as card_services
from apps.cards.models import Card, Cardholder, CardProduct, Phone
from apps.issuers import services as issuer_services
from apps.issuers.models import ApiKey, Issuer
from tests.factories import CardholderFactory, client_for, grant, make_api_key, make_card, make_staff, make_superuser, new_pan
from tests.support.fixtures import role_groups  # noqa: F401 (autouse fixture)

pytestmark = pytest.mark.django_db

NEXT_YEAR = date.today().year + 1
MODELS = [Issuer, ApiKey, CardProduct, Cardholder, Phone, Card, AuditEvent]


# ---------------------------------------------------------------- fixtures and helpers


# Each issuer's own BIN grant (grants never overlap), its product's range and its cards' prefix.
BINS = {"ours": "4970", "theirs": "4980"}


def populate(issuer, tag: str) -> dict:
    """One of everything for an issuer; `tag` makes its names recognisable in HTML."""
    bin4 = BINS[tag]
    grant(issuer, f"{bin4}00", f"{bin4}99")
    product = card_services.card_product_create(
        issuer=issuer, name=f"Product {tag}", network="visa", bin_ranges=[{"start": f"{bin4}00", "end": f"{bin4}99"}], actor="tests"
    )
    cardholder = CardholderFactory(issuer=issuer, external_id=f"cust-{tag}")
    phone = card_services.phone_create(
        cardholder=cardholder, number="+819012345678", is_primary=None, verified=True, actor="tests"
    )
    pan = new_pan(bin4)
    card = make_card(cardholder=cardholder, pan=pan, card_id=f"card-{tag}")
    make_api_key(issuer, name=f"key-{tag}")
    return {
        "issuer": issuer, "product": product, "cardholder": cardholder, "phone": phone, "card": card, "pan": pan,
        "api_key": ApiKey.objects.get(issuer=issuer), "audit_event": AuditEvent.objects.filter(issuer=issuer).first(),
    }


@pytest.fixture
def a(issuer):
    return populate(issuer, "ours")


@pytest.fixture
def b(other_issuer):
    return populate(other_issuer, "theirs")


@pytest.fixture
def staff(a):
    """A logged-in client per role of issuer A."""
    return {role: client_for(make_staff(a["issuer"], role)) for role in ROLES}


@pytest.fixture
def superuser_client(db):
    return client_for(make_superuser())


def url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def obj_of(data: dict, model):
    return {
        Issuer: data["issuer"], ApiKey: data["api_key"], CardProduct: data["product"], Cardholder: data["cardholder"],
        Phone: data["phone"], Card: data["card"], AuditEvent: data["audit_event"],
    }[model]


def html(response) -> str:
    return response.content.decode()


def db_dump() -> str:
    """Every row of every table, as text: what a secret must never be found in."""
    with connection.cursor() as cursor:
        rows = []
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            rows += cursor.fetchall()
    # bytea comes back as a memoryview on PostgreSQL, whose repr would hide its content.
    return repr([[bytes(v) if isinstance(v, memoryview) else v for v in row] for row in rows])


def card_post(cardholder, **overrides) -> dict:
    data = {
        "card_id": "card-new", "cardholder": str(cardholder.pk), "product": "", "pan": new_pan(BINS["ours"]),
        "expiry_month": "12", "expiry_year": str(NEXT_YEAR),
    }
    return {**data, **overrides}


# ---------------------------------------------------------------- every page renders for every role


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_changelist_and_change_page_render_for_every_role(staff, a, role, model):
    client = staff[role]
    assert client.get(url(model, "changelist")).status_code == 200
    assert client.get(url(model, "change", obj_of(a, model).pk)).status_code == 200


def test_admin_index_lists_the_models_a_role_may_see(staff, a):
    page = html(staff[ANALYST].get(reverse("admin:index")))
    for name in ("Cards", "Cardholders", "API keys", "Audit events", "Issuers"):
        assert name in page


def test_anonymous_visitors_get_the_login_page(a):
    client = Client()
    assert client.get(reverse("admin:login")).status_code == 200
    r = client.get(url(Card, "changelist"))
    assert r.status_code == 302 and r["Location"].startswith(reverse("admin:login"))


def test_superuser_sees_every_page_of_every_issuer(superuser_client, a, b):
    for data in (a, b):
        for model in MODELS:
            assert superuser_client.get(url(model, "change", obj_of(data, model).pk)).status_code == 200
    page = html(superuser_client.get(url(Card, "changelist")))
    assert "card-ours" in page and "card-theirs" in page


# ---------------------------------------------------------------- analysts read only


@pytest.mark.parametrize("model", [ApiKey, CardProduct, Cardholder, Card], ids=lambda m: m.__name__)
def test_analyst_cannot_add_or_change(staff, a, model):
    client = staff[ANALYST]
    obj = obj_of(a, model)
    assert client.get(url(model, "add")).status_code == 403
    assert client.post(url(model, "add"), {"name": "x"}).status_code == 403
    assert client.post(url(model, "change", obj.pk), {"name": "x"}).status_code == 403
    assert client.post(url(model, "delete", obj.pk), {"post": "yes"}).status_code == 403
    assert model.objects.filter(pk=obj.pk).exists()

    changelist = html(client.get(url(model, "changelist")))
    assert url(model, "add") not in changelist
    assert "delete_selected" not in changelist
    change_page = html(client.get(url(model, "change", obj.pk)))
    assert 'name="_save"' not in change_page
    assert url(model, "delete", obj.pk) not in change_page


def test_operator_cannot_manage_api_keys_or_products(staff, a):
    client = staff[OPERATOR]
    assert client.get(url(ApiKey, "add")).status_code == 403
    assert client.get(url(CardProduct, "add")).status_code == 403
    assert client.get(url(Card, "add")).status_code == 200


# ---------------------------------------------------------------- enrollment through the admin


def test_operator_adds_a_cardholder_with_a_phone(staff, a):
    r = staff[OPERATOR].post(url(Cardholder, "add"), {
        "external_id": "cust-new", "name": "Hanako Yamada", "locale": "ja",
        "phones-TOTAL_FORMS": "1", "phones-INITIAL_FORMS": "0", "phones-MIN_NUM_FORMS": "0", "phones-MAX_NUM_FORMS": "1000",
        "phones-0-number": "+819011112222", "phones-0-is_primary": "on",
    })
    assert r.status_code == 302, r.context and r.context["adminform"].form.errors
    cardholder = Cardholder.objects.get(external_id="cust-new")
    assert cardholder.issuer == a["issuer"]
    phone = cardholder.phones.get()
    assert phone.is_primary and str(phone.number) == "+819011112222"
    assert AuditEvent.objects.filter(kind="phone.created", object_id=str(phone.pk)).exists()

    changelist = html(staff[OPERATOR].get(url(Cardholder, "changelist")))
    assert "+81 ••• •••• 2222" in changelist and "+819011112222" not in changelist


def test_a_duplicate_external_id_is_a_form_error(staff, a):
    r = staff[OPERATOR].post(url(Cardholder, "add"), {
        "external_id": "cust-ours", "name": "Twin", "locale": "en",
        "phones-TOTAL_FORMS": "0", "phones-INITIAL_FORMS": "0", "phones-MIN_NUM_FORMS": "0", "phones-MAX_NUM_FORMS": "1000",
    })
    assert r.status_code == 200
    assert Cardholder.objects.filter(external_id="cust-ours").count() == 1


def test_operator_adds_a_card_and_the_pan_is_never_shown(staff, a):
    client = staff[OPERATOR]
    data = card_post(a["cardholder"])
    pan = data["pan"]
    r = client.post(url(Card, "add"), data)
    assert r.status_code == 302
    card = Card.objects.get(card_id="card-new")
    assert card.issuer == a["issuer"] and card.last4 == pan[-4:] and card.network == "visa"
    assert card.product == a["product"]  # found by its BIN range
    assert pan.encode() not in bytes(card.pan_ciphertext) and card.decrypt_pan() == pan
    assert pan not in db_dump()
    assert AuditEvent.objects.filter(kind="card.created", object_id=str(card.pk)).exists()

    for page in (url(Card, "change", card.pk), url(Card, "changelist"), url(Card, "history", card.pk)):
        body = html(client.get(page))
        assert pan not in body
    assert f"•••• {pan[-4:]}" in html(client.get(url(Card, "changelist")))


def test_a_pan_typed_in_groups_is_accepted(staff, a):
    pan = new_pan(BINS["ours"])
    grouped = " ".join(pan[i : i + 4] for i in range(0, 16, 4))
    assert staff[OPERATOR].post(url(Card, "add"), card_post(a["cardholder"], pan=grouped)).status_code == 302
    assert Card.objects.get(card_id="card-new").decrypt_pan() == pan


@pytest.mark.parametrize(
    "overrides, field, message",
    [
        ({"expiry_year": "2001"}, "expiry_year", "expired"),
        ({"pan": "4111111111111112"}, "pan", "Luhn"),
        ({"card_id": "card-ours"}, "card_id", "Already used"),
    ],
)
def test_card_form_errors_come_from_the_service_and_never_echo_the_pan(staff, a, overrides, field, message):
    data = card_post(a["cardholder"], **overrides)
    r = staff[OPERATOR].post(url(Card, "add"), data)
    assert r.status_code == 200
    errors = r.context["adminform"].form.errors
    assert message in " ".join(errors[field])
    assert data["pan"] not in html(r)
    assert not Card.objects.filter(card_id="card-new").exists()


def test_a_pan_enrolled_twice_is_a_form_error(staff, a):
    r = staff[OPERATOR].post(url(Card, "add"), card_post(a["cardholder"], pan=a["pan"]))
    assert r.status_code == 200
    assert "Already enrolled" in " ".join(r.context["adminform"].form.errors["pan"])
    assert a["pan"] not in html(r)


def test_the_card_change_form_updates_status_and_expiry_through_the_service(staff, a):
    card = a["card"]
    r = staff[OPERATOR].post(url(Card, "change", card.pk), {
        "status": "suspended", "expiry_month": "6", "expiry_year": str(NEXT_YEAR),
    })
    assert r.status_code == 302
    card.refresh_from_db()
    assert (card.status, card.expiry_month) == ("suspended", 6)
    event = AuditEvent.objects.get(kind="card.updated", object_id=str(card.pk))
    assert event.data["before"]["status"] == "active" and event.data["after"]["status"] == "suspended"


def test_the_card_change_form_has_no_pan_or_ciphertext_field(staff, a):
    form = staff[ISSUER_ADMIN].get(url(Card, "change", a["card"].pk)).context["adminform"].form
    assert set(form.fields) == {"status", "expiry_month", "expiry_year"}
    add_form = staff[ISSUER_ADMIN].get(url(Card, "add")).context["adminform"].form
    assert 'type="password"' in str(add_form["pan"]) and "pan_ciphertext" not in add_form.fields


def test_issuer_admin_adds_a_product_and_overlapping_bin_ranges_are_refused(staff, a):
    def post(name, start, end):
        return staff[ISSUER_ADMIN].post(url(CardProduct, "add"), {
            "name": name, "network": "mastercard", "co_badge": "",
            "bin_ranges-TOTAL_FORMS": "1", "bin_ranges-INITIAL_FORMS": "0",
            "bin_ranges-MIN_NUM_FORMS": "0", "bin_ranges-MAX_NUM_FORMS": "1000",
            "bin_ranges-0-start": start, "bin_ranges-0-end": end,
        })

    assert post("Overlap", "497050", "497060").status_code == 200  # inside Product ours's range
    assert not CardProduct.objects.filter(name="Overlap").exists()
    outside = post("Outside", "520000", "520099")
    assert outside.status_code == 200 and "Outside the issuer&#x27;s BIN grants" in html(outside)
    assert not CardProduct.objects.filter(name="Outside").exists()
    grant(a["issuer"], "520000", "520099")
    assert post("Gold", "520000", "520099").status_code == 302
    product = CardProduct.objects.get(name="Gold")
    assert product.issuer == a["issuer"] and product.bin_ranges.get().start == "520000"


# ---------------------------------------------------------------- tenancy


@pytest.mark.parametrize("role", ROLES)
def test_staff_never_reach_another_issuers_objects(staff, a, b, role):
    client = staff[role]
    for model in MODELS:
        r = client.get(url(model, "change", obj_of(b, model).pk))
        # Django answers an object outside the admin's queryset with a redirect to the index.
        assert r.status_code in (302, 404) and r.get("Location", "") in ("", reverse("admin:index"))


@pytest.mark.parametrize("role", ROLES)
def test_changelists_never_show_another_issuers_rows(staff, a, b, role):
    client = staff[role]
    for model in MODELS:
        page = html(client.get(url(model, "changelist")))
        assert "theirs" not in page and b["issuer"].issuer_id not in page, model.__name__
    assert "cust-ours" in html(client.get(url(Cardholder, "changelist")))


def test_staff_cannot_change_another_issuers_card_by_post(staff, a, b):
    card = b["card"]
    staff[OPERATOR].post(url(Card, "change", card.pk), {"status": "closed", "expiry_month": "1", "expiry_year": str(NEXT_YEAR)})
    card.refresh_from_db()
    assert card.status == "active"


def test_forms_offer_and_accept_only_the_own_issuers_related_rows(staff, a, b):
    r = staff[OPERATOR].post(url(Card, "add"), card_post(b["cardholder"]))
    assert r.status_code == 200 and "cardholder" in r.context["adminform"].form.errors
    r = staff[OPERATOR].post(url(Card, "add"), card_post(a["cardholder"], product=str(b["product"].pk)))
    assert r.status_code == 200 and "product" in r.context["adminform"].form.errors
    assert not Card.objects.filter(card_id="card-new").exists()


def test_the_cardholder_autocomplete_offers_only_the_own_issuers_cardholders(staff, a, b):
    r = staff[OPERATOR].get(
        reverse("admin:autocomplete"), {"app_label": "cards", "model_name": "card", "field_name": "cardholder", "term": "cust"}
    )
    assert [item["id"] for item in r.json()["results"]] == [str(a["cardholder"].pk)]


def test_staff_cannot_plant_a_row_in_another_issuer(staff, a, b):
    r = staff[OPERATOR].post(url(Cardholder, "add"), {
        "issuer": str(b["issuer"].pk), "external_id": "cust-planted", "name": "X", "locale": "en",
        "phones-TOTAL_FORMS": "0", "phones-INITIAL_FORMS": "0", "phones-MIN_NUM_FORMS": "0", "phones-MAX_NUM_FORMS": "1000",
    })
    assert r.status_code == 302
    assert Cardholder.objects.get(external_id="cust-planted").issuer == a["issuer"]


def test_a_staff_user_without_an_issuer_sees_nothing(a):
    client = client_for(make_staff(None, OPERATOR))
    for model in MODELS:
        page = html(client.get(url(model, "changelist")))
        assert "ours" not in page
    assert client.get(url(Cardholder, "add")).status_code == 403


# ---------------------------------------------------------------- API keys


def test_a_new_api_key_is_shown_once_and_only_its_hash_is_stored(staff, a):
    client = staff[ISSUER_ADMIN]
    r = client.post(url(ApiKey, "add"), {"name": "backend"})
    assert r.status_code == 200
    plaintext = re.search(r'value="(ik_[0-9a-f]+_[A-Za-z0-9_-]+)"', html(r)).group(1)
    api_key = ApiKey.objects.get(name="backend")
    assert api_key.issuer == a["issuer"] and plaintext.startswith(f"ik_{api_key.prefix}_")
    assert api_key.key_hash != plaintext and plaintext not in db_dump()
    assert issuer_services.api_key_authenticate(raw_key=plaintext) == api_key
    # Not in a message or any cookie, and nowhere afterwards.
    assert all(plaintext not in morsel.value for morsel in r.cookies.values())
    for page in (url(ApiKey, "changelist"), url(ApiKey, "change", api_key.pk)):
        assert plaintext not in html(client.get(page))


def test_the_api_key_add_form_takes_only_a_name(staff, a):
    form = staff[ISSUER_ADMIN].get(url(ApiKey, "add")).context["adminform"].form
    assert form.fields["issuer"].disabled and form.fields["issuer"].widget.is_hidden
    assert [name for name, field in form.fields.items() if not field.disabled] == ["name"]
    change_form = staff[ISSUER_ADMIN].get(url(ApiKey, "change", a["api_key"].pk)).context["adminform"].form
    assert list(change_form.fields) == ["name"]


def test_the_revoke_action_revokes_only_own_keys(staff, a, b):
    plaintext = make_api_key(a["issuer"], name="to-revoke")
    key = ApiKey.objects.get(name="to-revoke")
    r = staff[ISSUER_ADMIN].post(
        url(ApiKey, "changelist"), {"action": "revoke_keys", "_selected_action": [key.pk, b["api_key"].pk]}
    )
    assert r.status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert issuer_services.api_key_authenticate(raw_key=plaintext) is None
    assert AuditEvent.objects.filter(kind="api_key.revoked", data__prefix=key.prefix).exists()
    b["api_key"].refresh_from_db()
    assert b["api_key"].revoked_at is None


def test_operators_cannot_revoke_and_nobody_deletes_keys(staff, a):
    key = a["api_key"]
    staff[OPERATOR].post(url(ApiKey, "changelist"), {"action": "revoke_keys", "_selected_action": [key.pk]})
    key.refresh_from_db()
    assert key.revoked_at is None
    assert staff[ISSUER_ADMIN].get(url(ApiKey, "delete", key.pk)).status_code == 403


# ---------------------------------------------------------------- issuers and webhook secrets


def test_issuer_staff_read_their_issuer_and_never_see_the_webhook_secret(staff, a):
    issuer = a["issuer"]
    secret = issuer_services.issuer_rotate_webhook_secret(issuer=issuer, actor="tests")
    page = staff[ISSUER_ADMIN].get(url(Issuer, "change", issuer.pk))
    assert 'name="_save"' not in html(page) and secret not in html(page)
    assert staff[ISSUER_ADMIN].post(url(Issuer, "change", issuer.pk), {"name": "Renamed"}).status_code == 403
    assert staff[ISSUER_ADMIN].get(url(Issuer, "add")).status_code == 403


def test_rotating_the_webhook_secret_shows_the_new_one_once(staff, a, b):
    issuer = a["issuer"]
    rotate = reverse("admin:issuers_issuer_rotate_webhook_secret", args=[issuer.pk])
    client = staff[ISSUER_ADMIN]
    assert rotate in html(client.get(url(Issuer, "change", issuer.pk)))
    assert "whsec_" not in html(client.get(rotate))  # GET only asks for confirmation
    r = client.post(rotate)
    assert r.status_code == 200
    secret = re.search(r'value="(whsec_[A-Za-z0-9_-]+)"', html(r)).group(1)
    issuer.refresh_from_db()
    assert issuer.get_webhook_secret() == secret and secret not in db_dump()
    assert all(secret not in morsel.value for morsel in r.cookies.values())
    assert AuditEvent.objects.filter(issuer=issuer, kind="issuer.webhook_secret_rotated").exists()

    assert staff[OPERATOR].post(rotate).status_code == 403
    other = reverse("admin:issuers_issuer_rotate_webhook_secret", args=[b["issuer"].pk])
    assert client.post(other).status_code == 404


def test_a_superuser_cannot_rename_an_issuer_id_or_move_rows_between_issuers(superuser_client, a, b):
    assert "issuer_id" not in superuser_client.get(url(Issuer, "change", a["issuer"].pk)).context["adminform"].form.fields
    assert "issuer" not in superuser_client.get(url(Cardholder, "change", a["cardholder"].pk)).context["adminform"].form.fields
    assert "issuer" in superuser_client.get(url(Cardholder, "add")).context["adminform"].form.fields


def test_a_superuser_creates_an_issuer_and_sees_its_webhook_secret_once(superuser_client):
    r = superuser_client.post(url(Issuer, "add"), {
        "issuer_id": "NEWBANK001", "name": "New Bank", "country": "FR", "webauthn_origins": "[]",
    })
    assert r.status_code == 200
    secret = re.search(r'value="(whsec_[A-Za-z0-9_-]+)"', html(r)).group(1)
    issuer = Issuer.objects.get(issuer_id="NEWBANK001")
    assert issuer.get_webhook_secret() == secret
    assert secret not in html(superuser_client.get(url(Issuer, "change", issuer.pk)))


# ---------------------------------------------------------------- audit events


@pytest.mark.parametrize("who", ["superuser", ISSUER_ADMIN])
def test_audit_events_cannot_be_added_changed_or_deleted(staff, superuser_client, a, who):
    client = superuser_client if who == "superuser" else staff[who]
    event = a["audit_event"]
    count = AuditEvent.objects.count()
    assert client.get(url(AuditEvent, "add")).status_code == 403
    assert client.post(url(AuditEvent, "add"), {"kind": "forged"}).status_code == 403
    assert client.post(url(AuditEvent, "change", event.pk), {"kind": "forged"}).status_code == 403
    assert client.post(url(AuditEvent, "delete", event.pk), {"post": "yes"}).status_code == 403
    r = client.post(url(AuditEvent, "changelist"), {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"})
    assert r.status_code in (200, 302)
    assert AuditEvent.objects.count() == count
    event.refresh_from_db()
    assert event.kind != "forged"


def test_audit_events_are_searched_by_acs_trans_id_and_object_id(staff, a):
    trans_id = "8a880dc0-d2d2-4067-bcb1-b08d1690b26e"
    event = audit_record(issuer=a["issuer"], kind="challenge.created", actor="tests", acs_trans_id=trans_id)
    client = staff[ANALYST]

    def found(**params):
        return list(client.get(url(AuditEvent, "changelist"), params).context["cl"].result_list)

    assert found(q=trans_id) == [event]
    assert [e.kind for e in found(q=str(a["card"].pk))] == ["card.created"]
    assert found(q="not-a-uuid") == []
    assert {e.kind for e in found(kind="card.created")} == {"card.created"}


# ---------------------------------------------------------------- staff users


def test_issuer_admin_reads_only_its_own_users(staff, a, b):
    other_admin = make_staff(b["issuer"], ISSUER_ADMIN, username="admin-of-b")
    client = staff[ISSUER_ADMIN]
    page = html(client.get(url(User, "changelist")))
    assert "operator-" in page and "admin-of-b" not in page
    own = User.objects.get(username=f"operator-{a['issuer'].issuer_id}")
    assert client.get(url(User, "change", own.pk)).status_code == 200
    assert client.post(url(User, "change", own.pk), {"username": "renamed"}).status_code == 403
    assert client.get(url(User, "change", other_admin.pk)).status_code == 302
    assert client.get(url(User, "add")).status_code == 403
    assert staff[OPERATOR].get(url(User, "changelist")).status_code == 403


def test_superuser_adds_a_staff_user_with_issuer_and_role(superuser_client, a):
    operator = Group.objects.get(name=OPERATOR)
    r = superuser_client.post(url(User, "add"), {
        "username": "new-operator", "usable_password": "true", "password1": "a-long-Pass-phrase-42", "password2": "a-long-Pass-phrase-42",
        "issuer": str(a["issuer"].pk), "groups": [operator.pk], "is_staff": "on",
    })
    assert r.status_code == 302
    user = User.objects.get(username="new-operator")
    assert user.issuer == a["issuer"] and list(user.groups.all()) == [operator]


def test_a_staff_user_without_an_issuer_is_refused(superuser_client):
    r = superuser_client.post(url(User, "add"), {
        "username": "orphan", "usable_password": "true", "password1": "a-long-Pass-phrase-42", "password2": "a-long-Pass-phrase-42",
        "is_staff": "on",
    })
    assert r.status_code == 200 and "issuer" in r.context["adminform"].form.errors


# ---------------------------------------------------------------- the PAN, everywhere


@pytest.mark.parametrize("who", ["superuser", *ROLES])
def test_the_full_pan_appears_in_no_admin_page(staff, superuser_client, a, b, who):
    client = superuser_client if who == "superuser" else staff[who]
    pans = [a["pan"], b["pan"], *(Card.objects.get(pk=c.pk).decrypt_pan() for c in Card.objects.all())]
    pages = [reverse("admin:index"), url(Card, "add"), url(Card, "changelist") + "?q=" + a["pan"][-4:]]
    for model_admin in admin.site._registry.values():
        model = model_admin.model
        pages.append(url(model, "changelist"))
        for pk in model._default_manager.values_list("pk", flat=True):
            pages += [url(model, "change", pk), url(model, "history", pk)]
    for page in pages:
        r = client.get(page)
        assert r.status_code in (200, 302, 403), page
        body = html(r)
        for pan in pans:
            assert pan not in body, page
