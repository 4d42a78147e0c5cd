"""Enrollment: cardholders, phones, card products and cards. Writes only; reads in selectors."""

from datetime import date

from django.db import IntegrityError, transaction
from django.utils import timezone
from phonenumber_field.phonenumber import PhoneNumber
from phonenumbers import NumberParseException

from apps.audit.services import audit_record
from apps.cards.models import BinRange, Card, Cardholder, CardProduct, Phone
from apps.cards.selectors import bin_grant_in_use
from apps.core.crypto import pan_fingerprint, seal
from apps.core.exceptions import ApplicationError, Conflict
from apps.core.logging import sensitive
from apps.core.pan import CARTES_BANCAIRES, network_from_prefix, pan_problem
from apps.issuers.grant_data import attach_cards
from apps.issuers.models import BinGrant
from apps.issuers.selectors import bin_grant_for_pan, bin_grants_cover

# ---------------------------------------------------------------- cardholders


def cardholder_create(*, issuer, external_id: str, name: str, locale: str, actor: str) -> Cardholder:
    try:
        with transaction.atomic():
            cardholder = Cardholder.objects.create(issuer=issuer, external_id=external_id, name=name, locale=locale)
    except IntegrityError:
        raise Conflict(
            "A cardholder with this external_id exists.",
            code="duplicate_external_id",
            fields={"external_id": ["Already enrolled."]},
        )
    audit_record(issuer=issuer, kind="cardholder.created", actor=actor, obj=cardholder, data={"external_id": external_id})
    return cardholder


def cardholder_update(*, cardholder: Cardholder, actor: str, **changes) -> Cardholder:
    fields = [f for f in ("external_id", "name", "locale") if f in changes]
    for field in fields:
        setattr(cardholder, field, changes[field])
    if fields:
        try:
            with transaction.atomic():
                cardholder.save(update_fields=[*fields, "updated_at"])
        except IntegrityError:
            raise Conflict(
                "A cardholder with this external_id exists.",
                code="duplicate_external_id",
                fields={"external_id": ["Already enrolled."]},
            )
        audit_record(issuer=cardholder.issuer, kind="cardholder.updated", actor=actor, obj=cardholder, data={"fields": fields})
    return cardholder


def cardholder_delete(*, cardholder: Cardholder, actor: str) -> None:
    """Removes the cardholder with its phones and cards (and, later, devices)."""
    issuer, pk, external_id = cardholder.issuer, cardholder.pk, cardholder.external_id
    card_count = cardholder.cards.count()
    cardholder.delete()
    audit_record(
        issuer=issuer,
        kind="cardholder.deleted",
        actor=actor,
        data={"cardholder": str(pk), "external_id": external_id, "cards_removed": card_count},
    )


# ---------------------------------------------------------------- phones


def parse_phone_number(raw: object) -> PhoneNumber:
    """E.164 only: a leading '+', country code, a number that is valid for that country."""
    if not isinstance(raw, str) or not raw.startswith("+"):
        raise ApplicationError(
            "Invalid phone number.", code="invalid_phone_number", fields={"number": ["Use E.164 format, e.g. +819012345678."]}
        )
    try:
        number = PhoneNumber.from_string(raw)
    except NumberParseException:
        number = None
    if number is None or not number.is_valid():
        raise ApplicationError(
            "Invalid phone number.", code="invalid_phone_number", fields={"number": ["Not a valid phone number."]}
        )
    return number


def phone_create(*, cardholder: Cardholder, number: str, is_primary: bool | None, verified: bool, actor: str) -> Phone:
    parsed = parse_phone_number(number)
    # Serialise phone changes per cardholder so "one primary" holds under concurrent calls.
    Cardholder.objects.select_for_update().filter(pk=cardholder.pk).first()
    existing = cardholder.phones.all()
    if is_primary is None:
        is_primary = not existing.filter(is_primary=True).exists()
    if existing.filter(number=parsed).exists():
        raise Conflict("This number is already enrolled for the cardholder.", code="duplicate_phone", fields={"number": ["Already enrolled."]})
    if is_primary:
        existing.filter(is_primary=True).update(is_primary=False)
    phone = Phone.objects.create(cardholder=cardholder, number=parsed, is_primary=is_primary, verified=verified)
    audit_record(
        issuer=cardholder.issuer,
        kind="phone.created",
        actor=actor,
        obj=phone,
        data={"cardholder": str(cardholder.pk), "phone": phone.masked, "primary": is_primary, "verified": verified},
    )
    return phone


def phone_update(*, phone: Phone, actor: str, **changes) -> Phone:
    """Number, primary and verified flags. A new number is not verified unless the caller says
    so in the same change: the verification was of the old number."""
    if "number" in changes:
        changes["number"] = parse_phone_number(changes["number"])
        if changes["number"] == phone.number:
            del changes["number"]
        else:
            changes.setdefault("verified", False)
    fields = [f for f in ("number", "is_primary", "verified") if f in changes and changes[f] != getattr(phone, f)]
    if not fields:
        return phone
    cardholder = phone.cardholder
    with transaction.atomic():
        # Serialise phone changes per cardholder so "one primary" holds under concurrent calls.
        Cardholder.objects.select_for_update().filter(pk=cardholder.pk).first()
        if "number" in fields and cardholder.phones.exclude(pk=phone.pk).filter(number=changes["number"]).exists():
            raise Conflict("This number is already enrolled for the cardholder.", code="duplicate_phone",
                           fields={"number": ["Already enrolled."]})
        if changes.get("is_primary"):
            cardholder.phones.exclude(pk=phone.pk).filter(is_primary=True).update(is_primary=False)
        before = {f: _phone_audit_value(phone, f) for f in fields}
        for field in fields:
            setattr(phone, field, changes[field])
        phone.save(update_fields=fields)
        audit_record(
            issuer=cardholder.issuer, kind="phone.updated", actor=actor, obj=phone,
            data={"cardholder": str(cardholder.pk), "phone": phone.masked, "before": before,
                  "after": {f: _phone_audit_value(phone, f) for f in fields}},
        )
    return phone


def _phone_audit_value(phone: Phone, field: str):
    # The audit trail keeps numbers masked, like everything staff read.
    return phone.masked if field == "number" else getattr(phone, field)


def phone_delete(*, phone: Phone, actor: str) -> None:
    cardholder = phone.cardholder
    data = {"cardholder": str(cardholder.pk), "phone": phone.masked, "primary": phone.is_primary}
    pk = phone.pk
    phone.delete()
    audit_record(issuer=cardholder.issuer, kind="phone.deleted", actor=actor, data={**data, "phone_id": str(pk)})


# ---------------------------------------------------------------- card products


def _validate_bin_ranges(*, issuer, ranges: list[dict], exclude_product=None) -> None:
    errors: dict[str, list[str]] = {}
    parsed = []
    for i, item in enumerate(ranges):
        start, end = item["start"], item["end"]
        if not (start.isdigit() and end.isdigit() and 6 <= len(start) <= 19 and len(start) == len(end)):
            errors[f"bin_ranges[{i}]"] = ["start and end are 6 to 19 digits, of the same length."]
        elif int(start) > int(end):
            errors[f"bin_ranges[{i}]"] = ["start is after end."]
        else:
            parsed.append((i, start, end))
    if errors:
        raise ApplicationError("Invalid BIN ranges.", code="invalid_bin_range", fields=errors)

    existing = BinRange.objects.filter(product__issuer=issuer)
    if exclude_product is not None:
        existing = existing.exclude(product=exclude_product)
    others = [(f"{r.product.name}", r.start, r.end) for r in existing.select_related("product")]
    mine = [(f"bin_ranges[{i}]", s, e) for i, s, e in parsed]

    def overlap(a_start, a_end, b_start, b_end) -> bool:
        # Compare as digit-strings padded to a common length: prefix ranges of different lengths.
        n = max(len(a_start), len(b_start))
        lo_a, hi_a = a_start.ljust(n, "0"), a_end.ljust(n, "9")
        lo_b, hi_b = b_start.ljust(n, "0"), b_end.ljust(n, "9")
        return lo_a <= hi_b and lo_b <= hi_a

    for idx, (label, s, e) in enumerate(mine):
        for other_label, os_, oe in mine[idx + 1 :] + others:
            if overlap(s, e, os_, oe):
                errors.setdefault(label, []).append(f"Overlaps {other_label} ({os_}–{oe}).")
    if errors:
        raise ApplicationError("BIN ranges overlap.", code="overlapping_bin_range", fields=errors)

    # A product holds only prefixes the platform operator granted to this issuer (SPEC §2).
    for i, start, end in parsed:
        if not bin_grants_cover(issuer=issuer, start=start, end=end):
            errors[f"bin_ranges[{i}]"] = ["Outside the issuer's BIN grants."]
    if errors:
        raise ApplicationError("BIN ranges outside the issuer's BIN grants.", code="bin_range_outside_grants", fields=errors)


def _validate_network(network: str, co_badge: str) -> None:
    if network == CARTES_BANCAIRES and not co_badge:
        raise ApplicationError(
            "Cartes Bancaires products are co-badged.", code="co_badge_required", fields={"co_badge": ["Required for cartes_bancaires."]}
        )
    if network != CARTES_BANCAIRES and co_badge:
        raise ApplicationError(
            "Only Cartes Bancaires products are co-badged.", code="co_badge_not_allowed", fields={"co_badge": ["Only for cartes_bancaires."]}
        )


@transaction.atomic
def card_product_create(*, issuer, name: str, network: str, co_badge: str = "", bin_ranges: list[dict], actor: str) -> CardProduct:
    _validate_network(network, co_badge)
    # One product change at a time per issuer, so two concurrent creations cannot both pass
    # the overlap check.
    type(issuer).objects.select_for_update().filter(pk=issuer.pk).first()
    _validate_bin_ranges(issuer=issuer, ranges=bin_ranges)
    if CardProduct.objects.filter(issuer=issuer, name=name).exists():
        raise Conflict("A card product with this name exists.", code="duplicate_name", fields={"name": ["Already used."]})
    product = CardProduct.objects.create(issuer=issuer, name=name, network=network, co_badge=co_badge)
    BinRange.objects.bulk_create([BinRange(product=product, start=r["start"], end=r["end"]) for r in bin_ranges])
    audit_record(
        issuer=issuer, kind="card_product.created", actor=actor, obj=product,
        data={"name": name, "network": network, "co_badge": co_badge, "bin_ranges": bin_ranges},
    )
    return product


@transaction.atomic
def card_product_update(*, product: CardProduct, actor: str, **changes) -> CardProduct:
    network = changes.get("network", product.network)
    co_badge = changes.get("co_badge", product.co_badge if "network" not in changes or network == CARTES_BANCAIRES else "")
    _validate_network(network, co_badge)
    type(product.issuer).objects.select_for_update().filter(pk=product.issuer_id).first()
    if "name" in changes and CardProduct.objects.filter(issuer=product.issuer, name=changes["name"]).exclude(pk=product.pk).exists():
        raise Conflict("A card product with this name exists.", code="duplicate_name", fields={"name": ["Already used."]})
    if "bin_ranges" in changes:
        _validate_bin_ranges(issuer=product.issuer, ranges=changes["bin_ranges"], exclude_product=product)
        product.bin_ranges.all().delete()
        BinRange.objects.bulk_create([BinRange(product=product, start=r["start"], end=r["end"]) for r in changes["bin_ranges"]])
    product.name = changes.get("name", product.name)
    product.network, product.co_badge = network, co_badge
    product.save()
    if "network" in changes or "co_badge" in changes:
        # Cards follow their product's network.
        product.cards.update(network=network, co_badge=co_badge)
    audit_record(issuer=product.issuer, kind="card_product.updated", actor=actor, obj=product, data={"fields": sorted(changes)})
    return product


def card_product_delete(*, product: CardProduct, actor: str) -> None:
    """Removes the product and its BIN ranges. Refused while cards use it."""
    if product.cards.exists():
        raise Conflict(
            "Cards use this product.", code="product_in_use", fields={"product": ["Remove or move its cards first."]}
        )
    issuer, data = product.issuer, {"product": str(product.pk), "name": product.name, "network": product.network}
    data["bin_ranges"] = [{"start": r.start, "end": r.end} for r in product.bin_ranges.all()]
    product.delete()
    audit_record(issuer=issuer, kind="card_product.deleted", actor=actor, data=data)


def card_product_for_pan(*, issuer, pan: str) -> CardProduct | None:
    for bin_range in BinRange.objects.filter(product__issuer=issuer).select_related("product"):
        if bin_range.contains(pan):
            return bin_range.product
    return None


# ---------------------------------------------------------------- cards


def _validate_expiry(month: int, year: int, *, today: date | None = None) -> None:
    today = today or timezone.now().date()
    errors = {}
    if not 1 <= month <= 12:
        errors["expiry_month"] = ["Must be 1 to 12."]
    if not 2000 <= year <= 2099:
        errors["expiry_year"] = ["Must be a four-digit year."]
    if not errors and (year, month) < (today.year, today.month):
        errors["expiry_year"] = ["The card has expired."]
    if errors:
        raise ApplicationError("Invalid expiry.", code="invalid_expiry", fields=errors)


def card_create(
    *,
    issuer,
    card_id: str,
    cardholder: Cardholder,
    pan: str,
    expiry_month: int,
    expiry_year: int,
    product: CardProduct | None = None,
    actor: str,
) -> Card:
    with sensitive(pan):
        problem = pan_problem(pan)
        if problem:
            raise ApplicationError("Invalid PAN.", code="invalid_pan", fields={"pan": [problem]})
        # Only the issuer's own grants are consulted, so a PAN another issuer holds gets exactly the
        # answer of a PAN nobody holds: no way to learn what other issuers enrolled.
        grant = bin_grant_for_pan(issuer=issuer, pan=pan)
        if grant is None:
            raise ApplicationError(
                "The PAN is outside the issuer's BIN grants.",
                code="pan_outside_bin_grants",
                fields={"pan": ["Not inside a BIN range granted to this issuer."]},
            )
        _validate_expiry(expiry_month, expiry_year)
        if product is None:
            product = card_product_for_pan(issuer=issuer, pan=pan)
        if product is not None:
            network, co_badge = product.network, product.co_badge
        else:
            network, co_badge = network_from_prefix(pan), ""
            if network is None:
                raise ApplicationError(
                    "The PAN belongs to no known network and no card product.",
                    code="unknown_network",
                    fields={"pan": ["No card product or network matches this PAN's prefix."]},
                )
        sealed = seal(pan, context=Card.pan_context(issuer.issuer_id))
        card = Card(
            issuer=issuer,
            cardholder=cardholder,
            product=product,
            grant=grant,
            card_id=card_id,
            pan_key_id=sealed.key_id,
            pan_ciphertext=sealed.blob,
            pan_fingerprint=pan_fingerprint(pan),
            last4=pan[-4:],
            network=network,
            co_badge=co_badge,
            expiry_month=expiry_month,
            expiry_year=expiry_year,
        )
        if Card.objects.filter(issuer=issuer, pan_fingerprint=card.pan_fingerprint).exists():
            raise Conflict("This PAN is already enrolled.", code="duplicate_pan", fields={"pan": ["Already enrolled."]})
        if Card.objects.filter(issuer=issuer, card_id=card_id).exists():
            raise Conflict("A card with this card_id exists.", code="duplicate_card_id", fields={"card_id": ["Already used."]})
        try:
            with transaction.atomic():
                card.save(force_insert=True)
        except IntegrityError:  # lost a race with a concurrent enrollment of the same card
            raise Conflict("This card is already enrolled.", code="duplicate_card", fields={"pan": ["Already enrolled."]})
    audit_record(
        issuer=issuer, kind="card.created", actor=actor, obj=card,
        data={"card_id": card_id, "last4": card.last4, "network": network, "cardholder": str(cardholder.pk)},
    )
    return card


def card_update(*, card: Card, actor: str, **changes) -> Card:
    fields = [f for f in ("status", "expiry_month", "expiry_year") if f in changes]
    if "expiry_month" in changes or "expiry_year" in changes:
        _validate_expiry(changes.get("expiry_month", card.expiry_month), changes.get("expiry_year", card.expiry_year))
    before = {f: getattr(card, f) for f in fields}
    for field in fields:
        setattr(card, field, changes[field])
    if fields:
        card.save(update_fields=[*fields, "updated_at"])
        audit_record(
            issuer=card.issuer, kind="card.updated", actor=actor, obj=card,
            data={"card_id": card.card_id, "before": before, "after": {f: changes[f] for f in fields}},
        )
    return card


def card_delete(*, card: Card, actor: str) -> None:
    data = {"card": str(card.pk), "card_id": card.card_id, "last4": card.last4}
    issuer = card.issuer
    card.delete()
    audit_record(issuer=issuer, kind="card.deleted", actor=actor, data=data)


# ---------------------------------------------------------------- BIN grants (apps.issuers) and the cards inside


def bin_grant_delete(*, grant: BinGrant, actor: str) -> None:
    """Refused while a card of the issuer or a card product range lies inside the grant."""
    if bin_grant_in_use(grant=grant):
        raise Conflict(
            "Cards or card product ranges lie inside this grant.", code="bin_grant_in_use",
            fields={"bin_range": ["Remove or move the cards and card product ranges first."]},
        )
    issuer, data = grant.issuer, {"start": grant.start, "end": grant.end}
    try:
        with transaction.atomic():
            grant.delete()
    except IntegrityError:  # a card was attached meanwhile (on_delete RESTRICT)
        raise Conflict("Cards lie inside this grant.", code="bin_grant_in_use", fields={"bin_range": ["Remove the cards first."]})
    audit_record(issuer=issuer, kind="bin_grant.deleted", actor=actor, data=data)


def bin_grant_attach_cards(*, issuer=None, every_card: bool = False) -> dict:
    """Attach cards without a grant (or, with every_card, all cards) to their issuer's grant
    that holds the PAN; for data that predates grants. Returns {"attached", "unattached"}."""
    cards = Card.objects.all() if every_card else Card.objects.filter(grant__isnull=True)
    if issuer is not None:
        cards = cards.filter(issuer=issuer)
    with transaction.atomic():
        return attach_cards(Card=Card, BinGrant=BinGrant, cards=cards)
