"""Enrollment in the admin. Writes go through apps.cards.services, so the admin keeps the same
rules and audit trail as the API. The full PAN is write-only: it is typed once into the add form
and never shown again, anywhere."""

import re

import phonenumbers
from django import forms
from django.contrib import admin
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters

from apps.cards import services
from apps.cards.models import BinRange, Card, Cardholder, CardProduct, Phone
from apps.cards.selectors import bin_grant_in_use
from apps.core.admin_display import words_filter
from apps.core.admin_scoping import (
    IssuerScopedAdmin,
    IssuerScopedTabularInline,
    ReadOnlyAdminMixin,
    ServiceModelForm,
    admin_actor,
    inline_service,
)
from apps.core.exceptions import ApplicationError
from apps.issuers import services as issuer_services
from apps.issuers.models import BinGrant, Issuer

LAST4 = re.compile(r"\d{4}")
# Digits with the separators people type; anything else is not a phone number to look up.
PHONE_LIKE = re.compile(r"\+?[\d\s().-]{6,24}")
CARD_STATUS_WORDS = {
    Card.ACTIVE: _("Active"), Card.SUSPENDED: _("Suspended"), Card.LOST_STOLEN: _("Lost or stolen"), Card.CLOSED: _("Closed"),
}

# ---------------------------------------------------------------- card products


class BinRangeInline(IssuerScopedTabularInline):
    model = BinRange
    issuer_field = "product__issuer"
    fields = ["start", "end"]
    extra = 1


class CardProductForm(ServiceModelForm):
    """The product and its BIN ranges in one service call: the service checks the ranges
    (format, overlaps, grants) and its refusals land on the rows they concern."""

    class Meta:
        model = CardProduct
        fields = ["issuer", "name", "network", "co_badge"]

    def run_service(self):
        data = self.cleaned_data
        formset = next(f for f in self.formsets if f.model is BinRange)
        kept = [f for f in formset.forms if f.cleaned_data and not f.cleaned_data.get("DELETE")]
        ranges = [{"start": f.cleaned_data["start"], "end": f.cleaned_data["end"]} for f in kept]
        try:
            if self.adding:
                return services.card_product_create(
                    issuer=data["issuer"], name=data["name"], network=data["network"], co_badge=data["co_badge"],
                    bin_ranges=ranges, actor=self.actor,
                )
            changes = {f: data[f] for f in self.changed_data if f in ("name", "network", "co_badge")}
            if formset.has_changed():
                changes["bin_ranges"] = ranges
            # A fresh copy, not self.instance (already holding the new values).
            product = CardProduct.objects.select_related("issuer").get(pk=self.instance.pk)
            return services.card_product_update(product=product, actor=self.actor, **changes)
        except ApplicationError as exc:
            others = {}
            for key, messages in exc.fields.items():  # "bin_ranges[<index in ranges>]" names a row
                index = key.removeprefix("bin_ranges[").removesuffix("]")
                if key.startswith("bin_ranges[") and index.isdigit() and int(index) < len(kept):
                    kept[int(index)].add_error(None, messages)
                else:
                    others[key] = messages
            raise ApplicationError(exc.message, code=exc.code, fields=others) from exc


@admin.register(CardProduct)
class CardProductAdmin(IssuerScopedAdmin):
    form = CardProductForm
    list_display = ["name", "network", "co_badge", "bin_ranges_list", "created_at"]
    list_filter = ["network"]
    search_fields = ["name"]
    fields = ["issuer", "name", "network", "co_badge"]
    inlines = [BinRangeInline]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("bin_ranges")

    @admin.display(description=_("BIN ranges"))
    def bin_ranges_list(self, obj) -> str:
        return ", ".join(str(r) for r in obj.bin_ranges.all())

    def delete_model(self, request, obj):
        services.card_product_delete(product=obj, actor=admin_actor(request))


# ---------------------------------------------------------------- cardholders and phones


class PhoneInlineForm(forms.ModelForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None and self.initial.get("number"):  # an enrolled phone, not an empty row
            # OTPs go to this number: replacing it is a delete and an add, each audited.
            self.fields["number"].disabled = True


class PhoneFormSet(forms.BaseInlineFormSet):
    def clean(self):
        super().clean()
        primaries = [f for f in self.forms if f.cleaned_data.get("is_primary") and not f.cleaned_data.get("DELETE")]
        if len(primaries) > 1:
            raise forms.ValidationError(_("A cardholder has at most one primary phone."))


class PhoneInline(IssuerScopedTabularInline):
    model = Phone
    form = PhoneInlineForm
    formset = PhoneFormSet
    issuer_field = "cardholder__issuer"
    fields = ["number", "is_primary", "verified"]
    extra = 1


class CardholderForm(ServiceModelForm):
    class Meta:
        model = Cardholder
        fields = ["issuer", "external_id", "name", "locale"]

    def run_service(self):
        data = self.cleaned_data
        if self.adding:
            cardholder = services.cardholder_create(
                issuer=data["issuer"], external_id=data["external_id"], name=data["name"], locale=data["locale"],
                actor=self.actor,
            )
        else:
            cardholder = Cardholder.objects.select_related("issuer").get(pk=self.instance.pk)
            changes = {f: data[f] for f in self.changed_data if f in ("external_id", "name", "locale")}
            services.cardholder_update(cardholder=cardholder, actor=self.actor, **changes)
        for formset in self.formsets:
            if formset.model is Phone:
                self._save_phones(formset, cardholder)
        return cardholder

    def _save_phones(self, formset, cardholder) -> None:
        enrolled = {f.instance.pk: f for f in formset.initial_forms}
        phones = {p.pk: p for p in Phone.objects.select_related("cardholder__issuer").filter(pk__in=enrolled)}
        for pk, form in enrolled.items():
            if form.cleaned_data.get("DELETE") and pk in phones:
                inline_service(form, lambda phone=phones.pop(pk): services.phone_delete(phone=phone, actor=self.actor))
        changed = [(phones[pk], form) for pk, form in enrolled.items() if pk in phones and form.has_changed()]
        # Demotions before promotions, so "at most one primary" holds after every write.
        for phone, form in sorted(changed, key=lambda pair: bool(pair[1].cleaned_data.get("is_primary"))):
            flags = {f: form.cleaned_data[f] for f in ("is_primary", "verified")}
            inline_service(form, lambda phone=phone, flags=flags: services.phone_update(phone=phone, actor=self.actor, **flags))
        for form in formset.extra_forms:
            if form.has_changed() and not form.cleaned_data.get("DELETE"):
                inline_service(form, lambda form=form: services.phone_create(
                    cardholder=cardholder, number=form.cleaned_data["number"].as_e164,
                    is_primary=form.cleaned_data["is_primary"], verified=form.cleaned_data["verified"], actor=self.actor,
                ))


def _search_regions(user) -> list[str]:
    """The regions a national number is read in: the staff user's issuer's country; for the
    platform's superusers, every issuer's."""
    if getattr(user, "issuer", None) is not None:
        return [user.issuer.country]
    return sorted(set(Issuer.objects.values_list("country", flat=True)))


def phone_search_values(term: str, regions: list[str]) -> set[str]:
    """What a person typed as a phone number (E.164, or national with spaces or dashes) in E.164,
    as phones are stored: one candidate per region it is a possible number in."""
    if not PHONE_LIKE.fullmatch(term):
        return set()
    found = set()
    for region in regions or [None]:
        try:
            number = phonenumbers.parse(term, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_possible_number(number):
            found.add(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
    return found


@admin.register(Cardholder)
class CardholderAdmin(IssuerScopedAdmin):
    form = CardholderForm
    list_display = ["external_id", "name", "locale", "phones_list", "cards_list", "created_at"]
    list_filter = ["locale"]
    # Prefixes as people type them, within the issuer (also the card form's cardholder
    # autocomplete); get_search_results adds the exact look-ups.
    search_fields = ["^external_id", "^name"]
    search_help_text = _("Phone number, external id, card id or the last 4 digits of a card.")
    fields = ["issuer", "external_id", "name", "locale"]
    inlines = [PhoneInline]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("phones", "cards")

    def get_search_results(self, request, queryset, search_term):
        """Exact look-ups on indexed columns, each within the issuer, never a LIKE over every row:
        external_id and card_id (unique per issuer), a phone number in E.164, last 4 of a card."""
        term = search_term.strip()
        if not term:
            return queryset, False
        by_prefix, _duplicates = super().get_search_results(request, queryset, term)
        matches = Q(external_id=term) | Q(cards__card_id=term)
        if LAST4.fullmatch(term):
            matches |= Q(cards__last4=term)
        numbers = phone_search_values(term, _search_regions(request.user))
        if numbers:
            matches |= Q(phones__number__in=numbers)
        # Through pk__in: the joins to phones and cards would repeat a cardholder per match.
        return queryset.filter(Q(pk__in=queryset.filter(matches).values("pk")) | Q(pk__in=by_prefix.values("pk"))), False

    @admin.display(description=_("Phones"))
    def phones_list(self, obj) -> str:
        return ", ".join(p.masked for p in obj.phones.all())

    @admin.display(description=_("Cards"))
    def cards_list(self, obj) -> str:
        return ", ".join(c.masked_pan for c in obj.cards.all())

    def delete_model(self, request, obj):
        services.cardholder_delete(cardholder=obj, actor=admin_actor(request))


@admin.register(Phone)
class PhoneAdmin(ReadOnlyAdminMixin, IssuerScopedAdmin):
    """A searchable list; phones are added and removed on their cardholder's page."""

    issuer_field = "cardholder__issuer"
    list_display = ["masked", "cardholder", "is_primary", "verified", "created_at"]
    list_filter = ["is_primary", "verified"]
    list_select_related = ["cardholder"]
    search_fields = ["cardholder__external_id"]

    @admin.display(description=_("phone number"), ordering="number")
    def masked(self, obj) -> str:
        return obj.masked


# ---------------------------------------------------------------- cards


class CardAddForm(ServiceModelForm):
    pan = forms.CharField(
        label="PAN",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=_("Stored encrypted; only its last four digits are ever shown."),
    )

    class Meta:
        model = Card
        fields = ["card_id", "cardholder", "product", "expiry_month", "expiry_year"]

    def run_service(self):
        data = self.cleaned_data
        cardholder, product = data["cardholder"], data["product"]
        if product is not None and product.issuer_id != cardholder.issuer_id:
            raise ApplicationError(
                "Product of another issuer.", code="product_issuer_mismatch",
                fields={"product": ["This product belongs to another issuer than the cardholder."]},
            )
        return services.card_create(
            issuer=cardholder.issuer,
            card_id=data["card_id"],
            cardholder=cardholder,
            pan=re.sub(r"[\s-]", "", data["pan"]),  # people type PANs in groups
            expiry_month=data["expiry_month"],
            expiry_year=data["expiry_year"],
            product=product,
            actor=self.actor,
        )


class CardChangeForm(ServiceModelForm):
    class Meta:
        model = Card
        fields = ["status", "expiry_month", "expiry_year"]

    def run_service(self):
        # A fresh copy, not self.instance (already holding the new values): the service audits before/after.
        card = Card.objects.select_related("issuer").get(pk=self.instance.pk)
        return services.card_update(card=card, actor=self.actor, **{f: self.cleaned_data[f] for f in self.changed_data})


@admin.register(Card)
class CardAdmin(IssuerScopedAdmin):
    list_display = ["card_id", "masked_pan", "network", "status_words", "expiry", "cardholder"]
    list_filter = [words_filter("status", _("status"), CARD_STATUS_WORDS), "network"]
    list_select_related = ["cardholder"]
    search_fields = ["card_id"]  # what autocomplete would search; the list searches in get_search_results
    search_help_text = _("Card id, last four digits of the PAN, or the cardholder's external id.")

    def get_search_results(self, request, queryset, search_term):
        """Exact look-ups within the issuer: card_id, last 4, the cardholder's external_id."""
        term = search_term.strip()
        if not term:
            return queryset, False
        matches = Q(card_id=term) | Q(cardholder__external_id=term)
        if LAST4.fullmatch(term):
            matches |= Q(last4=term)
        return queryset.filter(matches), False

    @admin.display(description=_("Status"), ordering="status")
    def status_words(self, obj) -> str:
        return CARD_STATUS_WORDS.get(obj.status, obj.status)
    autocomplete_fields = ["cardholder"]
    add_fields = ["card_id", "cardholder", "product", "pan", "expiry_month", "expiry_year"]
    change_fields = [
        "card_id", "masked_pan", "network", "co_badge", "cardholder", "product",
        "status", "expiry_month", "expiry_year", "created_at", "updated_at",
    ]

    @admin.display(description=_("Card"), ordering="last4")
    def masked_pan(self, obj) -> str:
        return obj.masked_pan

    @admin.display(description=_("Expiry"))
    def expiry(self, obj) -> str:
        return obj.expiry

    @method_decorator(sensitive_post_parameters("pan"))
    def add_view(self, request, form_url="", extra_context=None):
        return super().add_view(request, form_url, extra_context)

    def get_form(self, request, obj=None, **kwargs):
        kwargs["form"] = CardAddForm if obj is None else CardChangeForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        return self.add_fields if obj is None else self.change_fields

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return [f for f in self.change_fields if f not in CardChangeForm.Meta.fields]

    def delete_model(self, request, obj):
        services.card_delete(card=obj, actor=admin_actor(request))


# ---------------------------------------------------------------- BIN grants (apps.issuers' model)
# Registered here: removing a grant is refused while cards or card product ranges lie inside it.


class BinGrantAddForm(ServiceModelForm):
    class Meta:
        model = BinGrant
        fields = ["issuer", "start", "end"]

    def run_service(self):
        return issuer_services.bin_grant_create(
            issuer=self.cleaned_data["issuer"], start=self.cleaned_data["start"], end=self.cleaned_data["end"], actor=self.actor
        )


@admin.register(BinGrant)
class BinGrantAdmin(IssuerScopedAdmin):
    """Grants are the platform operator's: only superusers add or remove them, nobody edits one
    (remove and grant again), and issuer staff may only see their own."""

    list_display = ["__str__", "start", "end", "card_count", "created_by", "created_at"]
    search_fields = ["start", "end", "issuer__issuer_id"]
    fields = ["issuer", "start", "end", "created_by", "created_at"]
    readonly_fields = ["created_by", "created_at"]
    actions = None  # no bulk delete: each removal goes through the service and its checks

    @admin.display(description=_("Cards"))
    def card_count(self, obj) -> int:
        return obj.cards.count()

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = BinGrantAddForm
        return super().get_form(request, obj, **kwargs)

    def get_deleted_objects(self, objs, request):
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        # A grant with cards or product ranges inside stays: the delete page says why.
        protected = [*protected, *(f"{o}: cards or card product ranges lie inside" for o in objs if bin_grant_in_use(grant=o))]
        return deleted, counts, perms_needed, protected

    def delete_model(self, request, obj):
        services.bin_grant_delete(grant=obj, actor=admin_actor(request))
