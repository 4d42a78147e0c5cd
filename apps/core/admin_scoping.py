"""Tenancy for the Django admin: issuer staff see and touch only their own issuer's rows.

A superuser sees everything. A staff user sees the rows of `request.user.issuer`; a staff user
without an issuer (a misconfiguration) sees nothing and can add nothing.

The tenant model (apps.issuers' Issuer) is named by its own app (`register_tenant_model`, called
from IssuersConfig.ready): core, the ground floor, imports no app.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import transaction
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from apps.core.exceptions import ApplicationError

_tenant_model = None


def register_tenant_model(model) -> None:
    """Names the model every scoped row leads to; apps.issuers calls it with Issuer."""
    global _tenant_model
    _tenant_model = model


def tenant_model():
    if _tenant_model is None:
        raise ImproperlyConfigured("No tenant model registered: apps.issuers registers Issuer in IssuersConfig.ready.")
    return _tenant_model


def scope_to_issuer(queryset, user, issuer_field: str = "issuer"):
    """The rows of `queryset` that `user` may see; `issuer_field` leads from the model to its issuer."""
    if user.is_superuser:
        return queryset
    if getattr(user, "issuer_id", None) is None:
        return queryset.none()
    return queryset.filter(**{issuer_field: user.issuer_id})


def admin_actor(request) -> str:
    """Who did it, as audit events record it."""
    return f"staff:{request.user.get_username()}"


def add_application_error(form, exc: ApplicationError) -> None:
    """A service's refusal shown on the form: field errors on their fields, the rest on top."""
    for field, field_messages in exc.fields.items():
        if field in form.fields:
            form.add_error(field, list(field_messages))
        else:
            form.add_error(None, [f"{field}: {message}" for message in field_messages])
    if not exc.fields:
        form.add_error(None, exc.message)


class ServiceFormMixin:
    """For a model form whose object, and its inlines, are written by services instead of
    ModelForm.save: the one way admin pages write, so the admin keeps the API's rules and audit.

    The services run as the last step of the form's validation, after the page's inline
    formsets validated, in a savepoint: a refusal (ApplicationError or ValidationError) rolls
    back every write of the page and is shown as form errors, never as an error page. Once the
    form is valid nothing else on the page can fail, so the admin's own saving is skipped
    (ServiceAdminMixin.save_model and save_related).
    """

    request = None  # bound by ServiceAdminMixin.get_form
    adding = True  # likewise: an add page, not a change page

    def run_service(self):
        """Write through the services and return the saved object."""
        raise NotImplementedError

    @property
    def actor(self) -> str:
        return admin_actor(self.request)

    @property
    def formsets(self) -> list:
        """The inline formsets of this page (bound by ServiceAdminMixin.get_formsets_with_inlines)."""
        return getattr(self.request, "admin_formsets", [])

    def _post_clean(self):
        super()._post_clean()
        if self.errors:
            return
        # Inline errors first: the services may only run for a page that is valid as a whole.
        if not all([formset.is_valid() for formset in self.formsets]):
            return
        try:
            with transaction.atomic():
                self.instance = self.run_service()
        except ApplicationError as exc:
            add_application_error(self, exc)
        except ValidationError as exc:
            add_validation_error(self, exc)

    def save(self, commit=True):
        self.save_m2m = lambda: None
        return self.instance


class ServiceModelForm(ServiceFormMixin, forms.ModelForm):
    pass


def inline_service(form, call):
    """Runs one service call for an inline row; a refusal is shown on that row, and the page's
    savepoint is rolled back with a note on top of the page."""
    try:
        return call()
    except ApplicationError as exc:
        add_application_error(form, exc)
        raise ApplicationError("Correct the errors below.", code=exc.code) from exc


def add_validation_error(form, exc: ValidationError) -> None:
    """A model's ValidationError (from full_clean in a service) shown on the form."""
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc.messages)
        return
    for field, errors in exc.message_dict.items():
        if field in form.fields:
            form.add_error(field, errors)
        else:
            form.add_error(None, [f"{field}: {message}" for message in errors])


class ServiceAdminMixin:
    """A ModelAdmin whose writes all go through services: ServiceFormMixin forms for add and
    change, delete_model for deletes (one object at a time, also for the bulk delete action).

    An admin that allows adding or changing without a service form fails loudly instead of
    writing unaudited rows; tests/audit/test_admin_audit.py checks every registered admin."""

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        return type(form.__name__, (form,), {"request": request, "adding": obj is None})

    def get_formsets_with_inlines(self, request, obj=None):
        request.admin_formsets = []
        for formset_class, inline in super().get_formsets_with_inlines(request, obj):
            yield type(formset_class.__name__, (_RegisteredFormSet, formset_class), {"admin_request": request}), inline

    def save_model(self, request, obj, form, change):
        if not isinstance(form, ServiceFormMixin):
            raise ImproperlyConfigured(f"{type(self).__name__}: admin writes go through a ServiceFormMixin form.")
        # Nothing to do: the services saved it while the form was validated.

    def save_related(self, request, form, formsets, change):
        if not isinstance(form, ServiceFormMixin):
            raise ImproperlyConfigured(f"{type(self).__name__}: admin writes go through a ServiceFormMixin form.")
        for formset in formsets:
            # What construct_change_message reads; the services wrote the inlines already.
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    def delete_model(self, request, obj):
        raise ImproperlyConfigured(f"{type(self).__name__}: deletes go through a service; override delete_model.")

    def delete_queryset(self, request, queryset):
        # One at a time through delete_model, never QuerySet.delete: each delete is audited.
        for obj in queryset:
            self.delete_model(request, obj)


class _RegisteredFormSet:
    """Makes a page's inline formsets known to its ServiceFormMixin form (through the request)."""

    admin_request = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.admin_request.admin_formsets.append(self)


class IssuerScopedMixin:
    # Lookup from this model to its Issuer, e.g. "cardholder__issuer" for a phone.
    issuer_field = "issuer"

    def get_queryset(self, request):
        return scope_to_issuer(super().get_queryset(request), request.user, self.issuer_field)

    def has_add_permission(self, request, *args):
        has_tenant = request.user.is_superuser or getattr(request.user, "issuer_id", None) is not None
        return has_tenant and super().has_add_permission(request, *args)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        user = request.user
        if not user.is_superuser:
            related = db_field.related_model
            path = self._issuer_path(related)
            if path is not None:
                kwargs["queryset"] = scope_to_issuer(related._default_manager.all(), user, path)
            if related is tenant_model():
                # Staff never choose the issuer: it is theirs, fixed and not shown. The field stays in
                # the form (disabled) so unique constraints that include it are still validated.
                kwargs.update(widget=forms.HiddenInput, initial=user.issuer_id, disabled=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def _issuer_path(self, model) -> str | None:
        if model is tenant_model():
            return "pk"
        model_admin = self.admin_site._registry.get(model)
        if isinstance(model_admin, IssuerScopedMixin):
            return model_admin.issuer_field
        if any(f.name == "issuer" for f in model._meta.get_fields()):
            return "issuer"
        return None

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        if obj is not None and request.user.is_superuser and self.issuer_field == "issuer":
            # Moving a row to another tenant would strand the rows that hang off it.
            return [*fields, "issuer"]
        return fields

    def get_list_display(self, request):
        columns = super().get_list_display(request)
        if request.user.is_superuser and self.issuer_field == "issuer":
            return [*columns, "issuer_column"]
        return columns

    @admin.display(description=_("Issuer"), ordering="issuer__issuer_id")
    def issuer_column(self, obj) -> str:
        # A method, not the foreign key: the admin never wraps a foreign key's column, and a
        # bank's name must wrap for a list to fit 1366 px.
        return str(obj.issuer)

    def get_list_select_related(self, request):
        related = super().get_list_select_related(request)
        if request.user.is_superuser and self.issuer_field == "issuer" and isinstance(related, (list, tuple)) and related:
            return [*related, "issuer"]  # the issuer column, without a query per row
        return related

    def get_list_filter(self, request):
        filters = super().get_list_filter(request)
        if request.user.is_superuser and self.issuer_field == "issuer":
            return [*filters, "issuer"]
        return filters


class IssuerScopedAdmin(IssuerScopedMixin, ServiceAdminMixin, admin.ModelAdmin):
    pass


class IssuerScopedTabularInline(IssuerScopedMixin, admin.TabularInline):
    pass


class ReadOnlyAdminMixin:
    """For what the system records and people only read (sessions, deliveries, tries, events)."""

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class RetryDeliveriesMixin(ReadOnlyAdminMixin):
    """A read-only list of outbound deliveries with one action: send the failed ones again.

    Subclasses name the permission that allows it and the service that requeues one delivery."""

    actions = ["retry_now"]
    retry_permission = ""

    def retry_one(self, delivery, *, actor: str) -> None:
        raise NotImplementedError

    def has_retry_permission(self, request) -> bool:
        return request.user.has_perm(self.retry_permission)

    @admin.action(description=_("Retry now (failed deliveries)"), permissions=["retry"])
    def retry_now(self, request, queryset):
        retried = 0
        for delivery in queryset.select_related("issuer"):
            try:
                self.retry_one(delivery, actor=admin_actor(request))
                retried += 1
            except ApplicationError as exc:
                self.message_user(request, f"{delivery}: {exc.message}", messages.WARNING)
        if retried:
            self.message_user(request, gettext("Queued again: %(count)d.") % {"count": retried}, messages.SUCCESS)
