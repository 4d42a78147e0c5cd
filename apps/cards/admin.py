"""Enrollment in the admin. Writes go through apps.cards.services, so the admin keeps the same
rules and audit trail as the API. The full PAN is write-only: it is typed once into the add form
and never shown again, anywhere."""

import re

from django import forms
from django.contrib import admin
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters

from apps.cards import services
from apps.cards.models import BinRange, Card, Cardholder, CardProduct, Phone
from apps.core.admin_scoping import (
    IssuerScopedAdmin,
    IssuerScopedTabularInline,
    ServiceModelForm,
    admin_actor,
)
from apps.core.exceptions import ApplicationError

# ---------------------------------------------------------------- card products


class BinRangeFormSet(forms.BaseInlineFormSet):
    def clean(self):
        super().clean()
        product = self.instance
        if any(self.errors) or product.issuer_id is None:
            return  # the page is shown again anyway; check overlaps once the rest is valid
        kept = [f for f in self.forms if f.cleaned_data and not f.cleaned_data.get("DELETE")]
        ranges = [{"start": f.cleaned_data["start"], "end": f.cleaned_data["end"]} for f in kept]
        try:
            # The services' own BIN rules (format, order, no overlap within the issuer).
            services._validate_bin_ranges(
                issuer=product.issuer, ranges=ranges, exclude_product=None if product._state.adding else product
            )
        except ApplicationError as exc:
            for key, messages in exc.fields.items():  # keys read "bin_ranges[<index in ranges>]"
                kept[int(key.removeprefix("bin_ranges[").removesuffix("]"))].add_error(None, messages)


class BinRangeInline(IssuerScopedTabularInline):
    model = BinRange
    formset = BinRangeFormSet
    issuer_field = "product__issuer"
    fields = ["start", "end"]
    extra = 1


@admin.register(CardProduct)
class CardProductAdmin(IssuerScopedAdmin):
    list_display = ["name", "network", "co_badge", "bin_ranges_list", "created_at"]
    list_filter = ["network"]
    search_fields = ["name"]
    fields = ["issuer", "name", "network", "co_badge"]
    inlines = [BinRangeInline]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("bin_ranges")

    @admin.display(description="BIN ranges")
    def bin_ranges_list(self, obj) -> str:
        return ", ".join(str(r) for r in obj.bin_ranges.all())

    def save_model(self, request, obj, form, change):
        if change:
            # The service also moves the product's cards to a new network.
            services.card_product_update(
                product=obj, actor=admin_actor(request), name=obj.name, network=obj.network, co_badge=obj.co_badge
            )
        else:
            super().save_model(request, obj, form, change)


# ---------------------------------------------------------------- cardholders and phones


class PhoneInlineForm(forms.ModelForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.instance._state.adding:  # the pk is a UUID default, set before saving
            # OTPs go to this number: replacing it is a delete and an add, each audited.
            self.fields["number"].disabled = True


class PhoneFormSet(forms.BaseInlineFormSet):
    def clean(self):
        super().clean()
        primaries = [f for f in self.forms if f.cleaned_data.get("is_primary") and not f.cleaned_data.get("DELETE")]
        if len(primaries) > 1:
            raise forms.ValidationError("A cardholder has at most one primary phone.")


class PhoneInline(IssuerScopedTabularInline):
    model = Phone
    form = PhoneInlineForm
    formset = PhoneFormSet
    issuer_field = "cardholder__issuer"
    fields = ["number", "is_primary", "verified"]
    extra = 1


@admin.register(Cardholder)
class CardholderAdmin(IssuerScopedAdmin):
    list_display = ["external_id", "name", "locale", "phones_list", "created_at"]
    list_filter = ["locale"]
    search_fields = ["external_id", "name"]
    fields = ["issuer", "external_id", "name", "locale"]
    inlines = [PhoneInline]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("phones")

    @admin.display(description="Phones")
    def phones_list(self, obj) -> str:
        return ", ".join(p.masked for p in obj.phones.all())

    def save_model(self, request, obj, form, change):
        if change:
            changes = {f: getattr(obj, f) for f in form.changed_data if f in ("external_id", "name", "locale")}
            services.cardholder_update(cardholder=obj, actor=admin_actor(request), **changes)
        else:
            super().save_model(request, obj, form, change)

    def save_formset(self, request, form, formset, change):
        if formset.model is not Phone:
            return super().save_formset(request, form, formset, change)
        actor = admin_actor(request)
        formset.save(commit=False)
        for phone in formset.deleted_objects:
            services.phone_delete(phone=phone, actor=actor)
        # Demotions before promotions, so "at most one primary" holds after every write.
        for phone, _ in sorted(formset.changed_objects, key=lambda pair: pair[0].is_primary):
            phone.save()
        for phone in formset.new_objects:
            services.phone_create(
                cardholder=form.instance,
                number=phone.number.as_e164,
                is_primary=phone.is_primary,
                verified=phone.verified,
                actor=actor,
            )

    def delete_model(self, request, obj):
        services.cardholder_delete(cardholder=obj, actor=admin_actor(request))

    def delete_queryset(self, request, queryset):
        for cardholder in queryset:
            self.delete_model(request, cardholder)


@admin.register(Phone)
class PhoneAdmin(IssuerScopedAdmin):
    """A searchable list; phones are added and removed on their cardholder's page."""

    issuer_field = "cardholder__issuer"
    list_display = ["masked", "cardholder", "is_primary", "verified", "created_at"]
    list_filter = ["is_primary", "verified"]
    list_select_related = ["cardholder"]
    search_fields = ["cardholder__external_id"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# ---------------------------------------------------------------- cards


class CardAddForm(ServiceModelForm):
    pan = forms.CharField(
        label="PAN",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Stored encrypted; only its last four digits are ever shown.",
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
    list_display = ["card_id", "masked_pan", "network", "status", "expiry", "cardholder"]
    list_filter = ["status", "network"]
    list_select_related = ["cardholder"]
    search_fields = ["card_id", "=last4", "cardholder__external_id"]
    search_help_text = "Card id, last four digits of the PAN, or the cardholder's external id."
    autocomplete_fields = ["cardholder"]
    add_fields = ["card_id", "cardholder", "product", "pan", "expiry_month", "expiry_year"]
    change_fields = [
        "card_id", "masked_pan", "network", "co_badge", "cardholder", "product",
        "status", "expiry_month", "expiry_year", "created_at", "updated_at",
    ]

    @admin.display(description="PAN", ordering="last4")
    def masked_pan(self, obj) -> str:
        return obj.masked_pan

    @admin.display(description="Expiry")
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

    def delete_queryset(self, request, queryset):
        for card in queryset:
            self.delete_model(request, card)
