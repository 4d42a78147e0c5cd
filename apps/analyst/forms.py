"""The analyst's query strings: list filters and dashboard periods, validated into plain values.

Amounts are entered in **major units** of the chosen currency (1500 JPY, 12.50 EUR) and turned into
the AReq's minor units with the currency's ISO 4217 exponent; `amount_unit=minor` takes minor units
as they are. An amount filter needs a currency: amounts of different currencies do not compare.
"""

from datetime import date, datetime, time, timedelta, timezone as dt_timezone
from decimal import Decimal

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from apps.analyst import selectors
from apps.analyst.models import TransactionLabel
from apps.analyst.selectors import TransactionFilters
from apps.core.money import CURRENCIES
from apps.issuers.models import Issuer

# ISO 4217 minor units that are not 2. Others: 2.
CURRENCY_EXPONENTS = {
    "392": 0, "410": 0, "704": 0, "152": 0, "352": 0, "600": 0, "950": 0, "952": 0, "108": 0, "646": 0,
    "048": 3, "368": 3, "400": 3, "414": 3, "434": 3, "512": 3, "788": 3,
}
MAX_DASHBOARD_DAYS = {"day": 366, "hour": 14}


def currency_exponent(currency: str) -> int:
    return CURRENCY_EXPONENTS.get(currency, 2)


def _currency_choices():
    return [("", _("any"))] + [(numeric, f"{alpha} ({numeric})") for numeric, (alpha, _) in CURRENCIES.items()]


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=dt_timezone.utc)


class IssuerChoiceField(forms.ChoiceField):
    """Superusers only: whose data to look at (empty: every issuer)."""

    def __init__(self, **kwargs):
        super().__init__(choices=self._choices_now, required=False, **kwargs)

    @staticmethod
    def _choices_now():
        return [("", _("all issuers"))] + [(i.issuer_id, f"{i.name} ({i.issuer_id})") for i in Issuer.objects.order_by("issuer_id")]


class ScopedForm(forms.Form):
    """Adds the issuer choice for superusers; other users' issuer is theirs and is not a field."""

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        if user is not None and user.is_superuser:
            self.fields = {"issuer": IssuerChoiceField(label=_("Issuer")), **self.fields}

    def chosen_issuer(self):
        issuer_id = self.cleaned_data.get("issuer") if self.is_valid() else None
        return Issuer.objects.filter(issuer_id=issuer_id).first() if issuer_id else None


class TransactionFilterForm(ScopedForm):
    created_from = forms.DateField(required=False, label=_("From (UTC day)"), widget=forms.DateInput(attrs={"type": "date"}))
    created_to = forms.DateField(required=False, label=_("To (UTC day, inclusive)"), widget=forms.DateInput(attrs={"type": "date"}))
    trans_status = forms.ChoiceField(required=False, label=_("transStatus"), choices=[("", _("any"))] + selectors.TRANS_STATUSES)
    method = forms.ChoiceField(required=False, label=_("Method"), choices=[("", _("any"))] + selectors.METHODS)
    fell_back = forms.ChoiceField(required=False, label=_("Fell back to SMS"), choices=[("", _("any")), ("yes", _("yes")), ("no", _("no"))])
    fallback_reason = forms.ChoiceField(
        required=False, label=_("Fallback reason"), choices=[("", _("any"))] + [(r, r) for r in selectors.FALLBACK_REASONS]
    )
    merchant = forms.CharField(required=False, max_length=40, label=_("Merchant"))
    merchant_match = forms.ChoiceField(
        required=False, label=_("Merchant match"), choices=[("prefix", _("starts with")), ("contains", _("contains"))]
    )
    last4 = forms.RegexField(required=False, regex=r"^[0-9]{4}$", label=_("Card last 4"), max_length=4,
                             error_messages={"invalid": _("Four digits.")}, widget=forms.TextInput(attrs={"inputmode": "numeric"}))
    currency = forms.ChoiceField(required=False, label=_("Currency"), choices=_currency_choices)
    amount_min = forms.DecimalField(required=False, min_value=0, max_digits=20, decimal_places=3, label=_("Amount from"))
    amount_max = forms.DecimalField(required=False, min_value=0, max_digits=20, decimal_places=3, label=_("Amount to"))
    amount_unit = forms.ChoiceField(
        required=False, label=_("Amounts in"), choices=[("major", _("major units (12.50)")), ("minor", _("minor units (1250)"))]
    )
    acs_trans_id = forms.UUIDField(required=False, label=_("acsTransID"))
    ds_trans_id = forms.UUIDField(required=False, label=_("dsTransID"))
    cardholder = forms.CharField(required=False, max_length=64, label=_("Cardholder (external id)"))
    card_id = forms.CharField(required=False, max_length=48, label=_("Card id"))
    label = forms.ChoiceField(
        required=False, label=_("Analyst label"),
        choices=[("", _("any")), (selectors.LABELLED, _("labelled"))] + TransactionLabel.LABELS,
    )

    def clean(self):
        data = super().clean()
        start, end = data.get("created_from"), data.get("created_to")
        if start and end and start > end:
            self.add_error("created_to", _("Must not be before the start."))
        low, high = data.get("amount_min"), data.get("amount_max")
        if (low is not None or high is not None) and not data.get("currency"):
            self.add_error("currency", _("Choose the currency of the amounts."))
        if low is not None and high is not None and low > high:
            self.add_error("amount_max", _("Must not be below the lower bound."))
        for name in ("amount_min", "amount_max"):
            value = data.get(name)
            if value is None or not data.get("currency"):
                continue
            minor = self._to_minor(value, data["currency"], data.get("amount_unit") or "major")
            if minor is None:
                self.add_error(name, _("Too many decimals for this currency (%(n)s).") % {"n": currency_exponent(data["currency"])})
            else:
                data[f"{name}_minor"] = minor
        if data.get("fallback_reason") and data.get("fell_back") == "no":
            self.add_error("fallback_reason", _("A reason means it fell back."))
        return data

    @staticmethod
    def _to_minor(value: Decimal, currency: str, unit: str) -> int | None:
        scaled = value if unit == "minor" else value.scaleb(currency_exponent(currency))
        return int(scaled) if scaled == scaled.to_integral_value() else None

    def filters(self) -> TransactionFilters:
        data = self.cleaned_data
        fell_back = {"yes": True, "no": False}.get(data.get("fell_back") or "")
        return TransactionFilters(
            created_from=_day_start(data["created_from"]) if data.get("created_from") else None,
            created_to=_day_start(data["created_to"] + timedelta(days=1)) if data.get("created_to") else None,
            trans_status=data.get("trans_status") or "",
            method=data.get("method") or "",
            fell_back=fell_back,
            fallback_reason=data.get("fallback_reason") or "",
            merchant=(data.get("merchant") or "").strip(),
            merchant_match=data.get("merchant_match") or "prefix",
            last4=data.get("last4") or "",
            currency=data.get("currency") or "",
            amount_min=data.get("amount_min_minor"),
            amount_max=data.get("amount_max_minor"),
            acs_trans_id=data.get("acs_trans_id"),
            ds_trans_id=data.get("ds_trans_id"),
            card_id=(data.get("card_id") or "").strip(),
            cardholder=(data.get("cardholder") or "").strip(),
            label=data.get("label") or "",
        )


class LabelForm(forms.Form):
    """An analyst's judgement; "no label" removes it."""

    label = forms.ChoiceField(label=_("Label"), required=False, choices=[("", _("no label"))] + TransactionLabel.LABELS,
                              widget=forms.RadioSelect)
    note = forms.CharField(label=_("Note"), required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 3}))

    def clean(self):
        data = super().clean()
        if not data.get("label") and (data.get("note") or "").strip():
            self.add_error("label", _("Choose a label for the note, or clear the note."))
        return data


class DashboardForm(ScopedForm):
    start = forms.DateField(required=False, label=_("From (UTC day)"), widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, label=_("To (UTC day, inclusive)"), widget=forms.DateInput(attrs={"type": "date"}))
    granularity = forms.ChoiceField(required=False, label=pgettext_lazy("dashboard granularity", "By"), choices=[("day", _("day")), ("hour", _("hour"))])

    def clean(self):
        data = super().clean()
        granularity = data.get("granularity") or "day"
        start, end = data.get("start"), data.get("end")
        if start and end and start > end:
            self.add_error("end", _("Must not be before the start."))
        elif start or end:
            start_day, end_day = self._days(data)
            if (end_day - start_day).days + 1 > MAX_DASHBOARD_DAYS[granularity]:
                self.add_error("end", _("At most %(days)s days by %(unit)s.") % {"days": MAX_DASHBOARD_DAYS[granularity], "unit": granularity})
        return data

    @staticmethod
    def _days(data) -> tuple[date, date]:
        """One bound given: a week from it (or up to it); none: the last 7 days, today included."""
        start, end = data.get("start"), data.get("end")
        if start and not end:
            end = max(start, min(timezone.now().date(), start + timedelta(days=6)))
        end = end or timezone.now().date()
        return start or end - timedelta(days=6), end

    def period(self) -> tuple[datetime, datetime, str]:
        """[start, end) and the bucket size."""
        data = self.cleaned_data if self.is_valid() else {}
        granularity = data.get("granularity") or "day"
        if granularity == "hour" and not data.get("start") and not data.get("end"):
            # The last 7 × 24 hours, this hour included.
            end = timezone.now().replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
            return end - timedelta(hours=7 * 24), end, granularity
        start_day, end_day = self._days(data)
        return _day_start(start_day), _day_start(end_day + timedelta(days=1)), granularity
