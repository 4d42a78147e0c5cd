"""BIN grants (SPEC §2, §3.1, §7.5; issue 11 item 1): a PAN belongs to the one issuer whose grant
holds it. Issuer A's API key could enrol issuer B's PAN under A's cardholder and the AReq then
picked whichever card sorted first across issuers (cross-issuer PAN takeover)."""

import importlib
import io
import json
import uuid
from datetime import date

import pytest
from django.apps import apps as django_apps
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction
from django.test import Client
from django.urls import reverse

from apps.accounts.models import User
from apps.accounts.roles import ISSUER_ADMIN, sync_role_groups
from apps.cards import services as card_services
from apps.cards.models import BinRange, Card, CardProduct
from apps.core.crypto import pan_fingerprint, seal
from apps.core.exceptions import ApplicationError
from apps.issuers import services as issuer_services
from apps.issuers.models import BinGrant, Issuer, pan_prefix_key, prefix_interval
from apps.issuers.selectors import bin_grant_for_pan, bin_grants_cover
from apps.threeds.models import RiskPolicy, Transaction
from tests.factories import CardholderFactory, IssuerFactory, grant, luhn_complete, make_api_key, make_card, new_pan
from tests.support.acs import post_areq as post
from tests.threeds.builders import areq

pytestmark = pytest.mark.django_db
NEXT_YEAR = date.today().year + 1
B_PAN = luhn_complete("497010123456789")  # inside B's grant 497010-497019
NOBODYS_PAN = luhn_complete("498010123456789")  # inside no grant


def card_body(cardholder, pan, card_id="card-001"):
    return {"card_id": card_id, "cardholder": str(cardholder.pk), "pan": pan, "expiry_month": 12, "expiry_year": NEXT_YEAR}


@pytest.fixture
def b_card(other_issuer):
    grant(other_issuer, "497010", "497019")
    RiskPolicy.objects.create(issuer=other_issuer, new_merchant_weight=0)
    return make_card(cardholder=CardholderFactory(issuer=other_issuer), pan=B_PAN, card_id="b-card")


def legacy_card(cardholder, pan: str, *, card_id: str, pk=None, grant=None) -> Card:
    """A card row as it could exist before grants (no service checks), e.g. a duplicate PAN."""
    issuer = cardholder.issuer
    sealed = seal(pan, context=Card.pan_context(issuer.issuer_id))
    return Card.objects.create(
        id=pk or uuid.uuid4(), issuer=issuer, cardholder=cardholder, card_id=card_id, grant=grant,
        pan_key_id=sealed.key_id, pan_ciphertext=sealed.blob, pan_fingerprint=pan_fingerprint(pan), last4=pan[-4:],
        network="visa", expiry_month=12, expiry_year=NEXT_YEAR,
    )


def post_areq(client, pan):
    return post(client, areq(pan=pan))


# ---------------------------------------------------------------- the takeover, over HTTP


def test_issuer_a_cannot_enrol_issuer_bs_pan(api, cardholder, b_card):
    r = api.post("/api/v1/cards", card_body(cardholder, B_PAN))

    assert r.status_code == 400
    assert r.json()["error"]["code"] == "pan_outside_bin_grants" and list(r.json()["error"]["fields"]) == ["pan"]
    assert B_PAN not in r.content.decode()
    assert Card.objects.filter(pan_fingerprint=pan_fingerprint(B_PAN)).count() == 1


def test_the_refusal_is_the_same_whether_or_not_another_issuer_holds_the_pan(api, cardholder, b_card):
    """No enumeration oracle: the answer for B's enrolled PAN is byte for byte the answer for a
    PAN nobody holds."""
    held = api.post("/api/v1/cards", card_body(cardholder, B_PAN))
    nobodys = api.post("/api/v1/cards", card_body(cardholder, NOBODYS_PAN))

    assert held.status_code == nobodys.status_code == 400
    assert held.content == nobodys.content
    assert {k: v for k, v in held.items() if k.lower() != "date"} == {k: v for k, v in nobodys.items() if k.lower() != "date"}


def test_import_cards_refuses_a_pan_outside_the_issuers_grants(issuer, cardholder, b_card, tmp_path):
    path = tmp_path / "cards.csv"
    path.write_text(
        "external_id,name,locale,card_id,pan,expiry_month,expiry_year\n"
        f"{cardholder.external_id},{cardholder.name},en,theirs,{B_PAN},12,{NEXT_YEAR}\n"
    )
    out, err = io.StringIO(), io.StringIO()
    report = tmp_path / "report.csv"
    try:
        call_command("import_cards", str(path), "--issuer-id", issuer.issuer_id, "--report", str(report), stdout=out, stderr=err)
    except (CommandError, SystemExit):
        pass
    assert not Card.objects.filter(issuer=issuer).exists()
    assert "2,theirs,pan,Not inside a BIN range granted to this issuer." in report.read_text()
    assert B_PAN not in out.getvalue() + err.getvalue() + report.read_text()


def test_a_card_gets_the_grant_that_holds_its_pan(issuer, cardholder):
    card = card_services.card_create(
        issuer=issuer, card_id="c1", cardholder=cardholder, pan="4111111111111111", expiry_month=12, expiry_year=NEXT_YEAR,
        actor="tests",
    )
    assert card.grant.issuer == issuer and (card.grant.start, card.grant.end) == ("411110", "411119")


# ---------------------------------------------------------------- AReq routing


def test_the_areq_reaches_the_card_of_the_issuer_whose_grant_holds_the_pan(client, issuer, b_card):
    """Legacy data: A holds a duplicate of B's PAN that sorts first. The AReq still goes to B."""
    # Even pointing at B's grant does not make A's card B's: the grant must be the card issuer's.
    legacy_card(CardholderFactory(issuer=issuer), B_PAN, card_id="intruder", pk=uuid.UUID(int=0), grant=b_card.grant)

    ares = post_areq(client, B_PAN)

    tx = Transaction.objects.get(acs_trans_id=ares["acsTransID"])
    assert tx.card_id == b_card.pk and tx.issuer_id == b_card.issuer_id


def test_a_card_without_a_grant_is_not_found_n_08(client, cardholder):
    legacy_card(cardholder, NOBODYS_PAN, card_id="legacy")
    ares = post_areq(client, NOBODYS_PAN)
    assert (ares["transStatus"], ares["transStatusReason"]) == ("N", "08")


def test_a_card_whose_pan_left_its_grant_is_not_found(client, issuer, cardholder):
    """The grant join also checks the PAN's prefix, not only the card's grant id."""
    card = legacy_card(cardholder, NOBODYS_PAN, card_id="legacy")
    Card.objects.filter(pk=card.pk).update(grant=BinGrant.objects.filter(issuer=issuer).first())
    ares = post_areq(client, NOBODYS_PAN)
    assert (ares["transStatus"], ares["transStatusReason"]) == ("N", "08")


# ---------------------------------------------------------------- grants never overlap, in the database


@pytest.mark.parametrize("start, end", [("497015", "497015"), ("4970", "4970"), ("49701999999", "49702000000"), ("497000", "497010")])
def test_an_overlapping_grant_is_refused_by_the_database(issuer, other_issuer, start, end):
    grant(other_issuer, "497010", "497019")
    low, high = (int(start.ljust(11, "0")), int(end.ljust(11, "9")))
    with pytest.raises(IntegrityError), transaction.atomic():
        # bulk_create skips save() and every Python check: only the database is left to refuse.
        BinGrant.objects.bulk_create([BinGrant(issuer=issuer, start=start, end=end, low=low, high=high)])


def test_the_database_refuses_an_overlap_for_the_same_issuer_too(other_issuer):
    grant(other_issuer, "497010", "497019")
    with pytest.raises(IntegrityError), transaction.atomic():
        BinGrant.objects.create(issuer=other_issuer, start="497019", end="497020")


def test_the_database_refuses_an_update_into_another_grant(issuer, other_issuer):
    grant(other_issuer, "497010", "497019")
    mine = grant(issuer, "497020", "497029")
    with pytest.raises(IntegrityError), transaction.atomic():
        BinGrant.objects.filter(pk=mine.pk).update(low=prefix_interval("497019", "497019")[0])


def test_adjacent_grants_are_fine(issuer, other_issuer):
    grant(other_issuer, "497010", "497019")
    grant(issuer, "497020", "497029")
    grant(issuer, "49700999999")
    assert BinGrant.objects.filter(start__startswith="4970").count() == 3


def test_the_service_refuses_an_overlap_with_a_conflict(issuer, other_issuer):
    grant(other_issuer, "497010", "497019")
    with pytest.raises(ApplicationError) as exc:
        issuer_services.bin_grant_create(issuer=issuer, start="497019", end="497019", actor="tests")
    assert exc.value.status_code == 409 and exc.value.code == "overlapping_bin_grant"


@pytest.mark.parametrize("text", ["41111", "411111111111", "411119-411110", "4111-41111", "abcdef", "411111-", "４１１１１１"])
def test_invalid_ranges_are_refused(text):
    with pytest.raises(ApplicationError) as exc:
        issuer_services.parse_bin_range(text)
    assert exc.value.code == "invalid_bin_range"


def test_a_grant_with_cards_or_product_ranges_inside_cannot_be_removed(issuer, cardholder):
    with_card = grant(issuer, "497010", "497019")
    make_card(cardholder=cardholder, pan=luhn_complete("497011000000001"))
    with_range = grant(issuer, "497020", "497029")
    card_services.card_product_create(
        issuer=issuer, name="P", network="visa", bin_ranges=[{"start": "4970205", "end": "4970205"}], actor="tests"
    )
    unused = grant(issuer, "497030", "497039")

    for busy in (with_card, with_range):
        with pytest.raises(ApplicationError) as exc:
            card_services.bin_grant_delete(grant=busy, actor="tests")
        assert exc.value.code == "bin_grant_in_use"
    card_services.bin_grant_delete(grant=unused, actor="tests")
    assert not BinGrant.objects.filter(pk=unused.pk).exists()


def test_selectors(issuer):
    grant(issuer, "497010", "497019")
    grant(issuer, "497020", "497029")
    assert bin_grant_for_pan(issuer=issuer, pan=luhn_complete("497015000000001")).start == "497010"
    assert bin_grant_for_pan(issuer=issuer, pan=NOBODYS_PAN) is None
    assert bin_grants_cover(issuer=issuer, start="497015", end="497025")  # across two adjacent grants
    assert bin_grants_cover(issuer=issuer, start="4970100000000", end="4970100000099")  # longer than 11 digits
    assert not bin_grants_cover(issuer=issuer, start="497015", end="497030")
    assert not bin_grants_cover(issuer=issuer, start="4970", end="4970")
    assert pan_prefix_key("4111111111111111") == 41111111111


# ---------------------------------------------------------------- card products


def test_a_product_range_outside_the_issuers_grants_is_400_naming_the_range(api, b_card):
    r = api.post("/api/v1/card-products", {
        "name": "Mine", "network": "visa",
        "bin_ranges": [{"start": "411111", "end": "411111"}, {"start": "497012", "end": "497012"}, {"start": "498000", "end": "498000"}],
    })
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "bin_range_outside_grants" and sorted(error["fields"]) == ["bin_ranges[1]", "bin_ranges[2]"]
    # B's range answers exactly as a range nobody holds.
    assert error["fields"]["bin_ranges[1]"] == error["fields"]["bin_ranges[2]"]
    assert not CardProduct.objects.filter(name="Mine").exists()


def test_a_product_update_outside_the_grants_is_refused(api, issuer):
    product = card_services.card_product_create(
        issuer=issuer, name="P", network="visa", bin_ranges=[{"start": "411111", "end": "411111"}], actor="tests"
    )
    r = api.patch(f"/api/v1/card-products/{product.pk}", {"bin_ranges": [{"start": "411111", "end": "411120"}]})
    assert r.status_code == 400 and r.json()["error"]["code"] == "bin_range_outside_grants"
    assert list(BinRange.objects.filter(product=product).values_list("start", "end")) == [("411111", "411111")]


# ---------------------------------------------------------------- the migration


def _migration():
    return importlib.import_module("apps.cards.migrations.0002_card_grant")


def _legacy_product(issuer, name, *ranges):
    product = CardProduct.objects.create(issuer=issuer, name=name, network="visa")
    for start, end in ranges:
        BinRange.objects.create(product=product, start=start, end=end)
    return product


def test_the_migration_grants_unambiguous_product_ranges_and_attaches_cards():
    x, y = IssuerFactory(), IssuerFactory()
    _legacy_product(x, "X1", ("497000", "497099"), ("498000", "498000"))
    _legacy_product(y, "Y1", ("4970505", "4970505"), ("499000", "499009"))  # 4970505 contests X's 497000-497099
    _legacy_product(x, "X2", ("4981000000000000", "4981000000000099"), ("4981000000000100", "4981000000000199"))
    x_holder, y_holder = CardholderFactory(issuer=x), CardholderFactory(issuer=y)
    x_clear = legacy_card(x_holder, luhn_complete("498000111111111"), card_id="x-clear")
    x_contested = legacy_card(x_holder, luhn_complete("497011111111111"), card_id="x-contested")
    y_clear = legacy_card(y_holder, luhn_complete("499005111111111"), card_id="y-clear")
    x_long = legacy_card(x_holder, luhn_complete("498100000000015"), card_id="x-long")
    y_nowhere = legacy_card(y_holder, luhn_complete("401200111111111"), card_id="y-nowhere")

    _migration().derive_grants_and_attach(django_apps, None)

    grants = {(g.issuer_id, g.start, g.end) for g in BinGrant.objects.all()}
    # X2's two 19-digit ranges share one 11-digit prefix: one grant.
    assert grants == {(x.pk, "498000", "498000"), (y.pk, "499000", "499009"), (x.pk, "49810000000", "49810000000")}
    for card, holder_issuer in ((x_clear, x), (y_clear, y), (x_long, x)):
        card.refresh_from_db()
        assert card.grant.issuer == holder_issuer
    for card in (x_contested, y_nowhere):
        card.refresh_from_db()
        assert card.grant is None

    # What the README tells the operator to do with the rest.
    out = io.StringIO()
    call_command("bin_grants", "add", "--issuer-id", x.issuer_id, "497000-497049", "497051-497099", stdout=out)
    call_command("bin_grants", "attach-cards", "--issuer-id", x.issuer_id, stdout=out, stderr=io.StringIO())
    x_contested.refresh_from_db()
    assert x_contested.grant.issuer == x and "attached=" in out.getvalue()


def test_the_migration_runs_forward_from_the_schema_before_grants(transactional_db):
    """The real migration path: back to cards 0001 / issuers 0002, legacy data, forward again."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    before = [("cards", "0001_initial"), ("issuers", "0002_drop_otp_delivery")]
    executor.migrate(before)
    executor.loader.build_graph()
    old = executor.loader.project_state(before).apps
    OldIssuer, OldProduct = old.get_model("issuers", "Issuer"), old.get_model("cards", "CardProduct")
    OldRange, OldHolder, OldCard = old.get_model("cards", "BinRange"), old.get_model("cards", "Cardholder"), old.get_model("cards", "Card")
    issuer = OldIssuer.objects.create(issuer_id="MIGRATE001", name="Old Bank")
    product = OldProduct.objects.create(issuer=issuer, name="Old", network="visa")
    OldRange.objects.create(product=product, start="456700", end="456799")
    holder = OldHolder.objects.create(issuer=issuer, external_id="old-1", name="Old Holder")
    pan = luhn_complete("456712345678901")
    sealed = seal(pan, context="pan:MIGRATE001")
    OldCard.objects.create(
        issuer=issuer, cardholder=holder, product=product, card_id="old-card", pan_key_id=sealed.key_id,
        pan_ciphertext=sealed.blob, pan_fingerprint=pan_fingerprint(pan), last4=pan[-4:], network="visa",
        expiry_month=12, expiry_year=NEXT_YEAR,
    )

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    card = Card.objects.get(card_id="old-card")
    assert (card.grant.issuer.issuer_id, card.grant.start, card.grant.end) == ("MIGRATE001", "456700", "456799")
    # And the database constraint came with it.
    with pytest.raises(IntegrityError), transaction.atomic():
        BinGrant.objects.create(issuer=Issuer.objects.get(issuer_id="MIGRATE001"), start="456750", end="456750")


# ---------------------------------------------------------------- admin


@pytest.fixture
def superuser_client():
    user = User.objects.create_user(username="root", password="x" * 16, is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def issuer_admin_client(issuer):
    sync_role_groups()
    user = User.objects.create_user(username="bank-admin", password="x" * 16, is_staff=True, issuer=issuer)
    user.groups.add(Group.objects.get(name=ISSUER_ADMIN))
    client = Client()
    client.force_login(user)
    return client


def test_a_superuser_grants_and_removes_in_the_admin(superuser_client, issuer, other_issuer):
    add = reverse("admin:issuers_bingrant_add")
    r = superuser_client.post(add, {"issuer": other_issuer.pk, "start": "497010", "end": "497019"})
    assert r.status_code == 302
    created = BinGrant.objects.get(issuer=other_issuer, start="497010")
    assert created.created_by.startswith("staff:")

    overlapping = superuser_client.post(add, {"issuer": other_issuer.pk, "start": "411111", "end": "411111"})
    assert overlapping.status_code == 200 and "overlaps" in overlapping.content.decode().lower()

    delete = reverse("admin:issuers_bingrant_delete", args=[created.pk])
    assert superuser_client.post(delete, {"post": "yes"}).status_code == 302
    assert not BinGrant.objects.filter(pk=created.pk).exists()


def test_the_admin_will_not_remove_a_grant_in_use(superuser_client, b_card):
    delete = reverse("admin:issuers_bingrant_delete", args=[b_card.grant_id])
    r = superuser_client.post(delete, {"post": "yes"})
    assert r.status_code == 200 and BinGrant.objects.filter(pk=b_card.grant_id).exists()


def test_issuer_staff_only_view_their_own_grants(issuer_admin_client, issuer, b_card):
    listing = issuer_admin_client.get(reverse("admin:issuers_bingrant_changelist"))
    assert listing.status_code == 200
    html = listing.content.decode()
    assert "411110" in html and "497010" not in html

    mine = BinGrant.objects.get(issuer=issuer, start="411110")
    assert issuer_admin_client.get(reverse("admin:issuers_bingrant_change", args=[b_card.grant_id])).status_code in (302, 404)
    page = issuer_admin_client.get(reverse("admin:issuers_bingrant_change", args=[mine.pk]))
    assert page.status_code == 200 and 'name="start"' not in page.content.decode()  # read only
    assert issuer_admin_client.get(reverse("admin:issuers_bingrant_add")).status_code == 403
    r = issuer_admin_client.post(reverse("admin:issuers_bingrant_add"), {"issuer": issuer.pk, "start": "497020", "end": "497029"})
    assert r.status_code == 403 and not BinGrant.objects.filter(start="497020").exists()
    r = issuer_admin_client.post(reverse("admin:issuers_bingrant_delete", args=[mine.pk]), {"post": "yes"})
    assert r.status_code == 403 and BinGrant.objects.filter(pk=mine.pk).exists()
    r = issuer_admin_client.post(reverse("admin:issuers_bingrant_change", args=[mine.pk]), {"issuer": issuer.pk, "start": "497000", "end": "497099"})
    assert r.status_code == 403
    mine.refresh_from_db()
    assert mine.start == "411110"


def test_an_issuers_api_key_has_no_way_to_grant(api):
    for path in ("/api/v1/bin-grants", "/api/v1/grants"):
        assert api.post(path, {"start": "497010", "end": "497019"}).status_code == 404
    assert not BinGrant.objects.filter(start="497010").exists()


# ---------------------------------------------------------------- commands


def bootstrap(*args) -> dict:
    out = io.StringIO()
    call_command("bootstrap_issuer", *args, stdout=out)
    return json.loads(out.getvalue())


def test_bootstrap_issuer_grants_its_bin_ranges():
    result = bootstrap("--issuer-id", "BOOTBANK01", "--name", "Boot", "--bin-range", "40000000-40009999", "--bin-range", "455555")
    issuer = Issuer.objects.get(issuer_id=result["issuer_id"])
    assert sorted(issuer.bin_grants.values_list("start", "end")) == [("40000000", "40009999"), ("455555", "455555")]
    assert all(g.created_by == "bootstrap_issuer" for g in issuer.bin_grants.all())


@pytest.mark.parametrize("ranges", [["40000000-40009999", "400050"], ["411115"]])
def test_bootstrap_issuer_refuses_an_overlap_and_creates_nothing(issuer, ranges):
    args = ["--issuer-id", "BOOTBANK02", "--name", "Boot"]
    for r in ranges:
        args += ["--bin-range", r]
    with pytest.raises(CommandError, match="overlaps"):
        bootstrap(*args)
    assert not Issuer.objects.filter(issuer_id="BOOTBANK02").exists()


@pytest.mark.parametrize("text", ["4000", "400000-4000009", "400009-400000", "4000000000000"])
def test_bootstrap_issuer_refuses_a_malformed_range(text):
    with pytest.raises(CommandError, match="--bin-range"):
        bootstrap("--issuer-id", "BOOTBANK03", "--name", "Boot", "--bin-range", text)
    assert not Issuer.objects.filter(issuer_id="BOOTBANK03").exists()


def test_bin_grants_command(issuer, other_issuer, cardholder):
    out = io.StringIO()
    call_command("bin_grants", "add", "--issuer-id", other_issuer.issuer_id, "497010-497019", "497020-497029", stdout=out)
    with pytest.raises(CommandError, match="overlaps"):
        call_command("bin_grants", "add", "--issuer-id", other_issuer.issuer_id, "497030-497039", "411111", stdout=out)
    assert not BinGrant.objects.filter(start="497030").exists()  # all or nothing

    make_card(cardholder=CardholderFactory(issuer=other_issuer), pan=luhn_complete("497011000000001"))
    listing = io.StringIO()
    call_command("bin_grants", "list", "--issuer-id", other_issuer.issuer_id, stdout=listing)
    assert listing.getvalue().splitlines() == [
        f"{other_issuer.issuer_id}\t497010-497019\tcards=1", f"{other_issuer.issuer_id}\t497020-497029\tcards=0",
    ]
    with pytest.raises(CommandError, match="inside"):
        call_command("bin_grants", "remove", "--issuer-id", other_issuer.issuer_id, "497010-497019", stdout=out)
    call_command("bin_grants", "remove", "--issuer-id", other_issuer.issuer_id, "497020-497029", stdout=out)
    with pytest.raises(CommandError, match="no such grant"):
        call_command("bin_grants", "remove", "--issuer-id", issuer.issuer_id, "497010-497019", stdout=out)
    with pytest.raises(CommandError, match="no issuer"):
        call_command("bin_grants", "list", "--issuer-id", "NOSUCHBANK", stdout=out)
    assert "497011000000001" not in out.getvalue() + listing.getvalue()


def test_attach_cards_reports_cards_left_outside(issuer, cardholder):
    legacy_card(cardholder, NOBODYS_PAN, card_id="legacy")
    out, err = io.StringIO(), io.StringIO()
    call_command("bin_grants", "attach-cards", stdout=out, stderr=err)
    assert "unattached=1" in out.getvalue() and "bin_grants add" in err.getvalue()
    assert NOBODYS_PAN not in out.getvalue() + err.getvalue()
