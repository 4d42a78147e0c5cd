import copy

from axes.models import AccessAttempt
from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm, AdminUserCreationForm, UserChangeForm
from django.contrib.auth.models import Group
from django.utils.translation import gettext_lazy as _
from django_celery_beat.models import ClockedSchedule, CrontabSchedule, IntervalSchedule, PeriodicTask, SolarSchedule

from apps.accounts import services
from apps.accounts.models import User
from apps.accounts.roles import ISSUER_ADMIN
from apps.core.admin_scoping import (
    ReadOnlyAdminMixin,
    ServiceAdminMixin,
    ServiceFormMixin,
    admin_actor,
    scope_to_issuer,
)


class StaffUserAddForm(ServiceFormMixin, AdminUserCreationForm):
    def run_service(self):
        data = self.cleaned_data
        return services.staff_user_create(
            username=data["username"],
            password=data["password1"] if data.get("set_usable_password") else None,
            issuer=data.get("issuer"),
            groups=data.get("groups") or [],
            is_staff=data.get("is_staff", False),
            actor=self.actor,
        )


class StaffUserChangeForm(ServiceFormMixin, UserChangeForm):
    def run_service(self):
        user = User.objects.select_related("issuer").get(pk=self.instance.pk)  # fresh: audited before/after
        fields = services.USER_FIELDS + services.USER_M2M
        return services.staff_user_update(
            user=user, actor=self.actor, **{f: self.cleaned_data[f] for f in self.changed_data if f in fields}
        )


class StaffPasswordForm(ServiceFormMixin, AdminPasswordChangeForm):
    def run_service(self):
        password = self.cleaned_data["password1"] if self.cleaned_data.get("set_usable_password", True) else None
        return services.staff_user_set_password(user=self.user, password=password, actor=self.actor)


@admin.register(User)
class UserAdmin(ServiceAdminMixin, DjangoUserAdmin):
    """Superusers manage staff users. An issuer admin may read, not change, its own issuer's users."""

    add_form = StaffUserAddForm
    form = StaffUserChangeForm

    list_display = ["username", "email", "issuer", "roles", "is_staff", "is_superuser", "is_active"]
    list_filter = ["is_staff", "is_superuser", "is_active", "groups", "issuer"]
    fieldsets = [
        (None, {"fields": ["username", "password"]}),
        (_("Personal info"), {"fields": ["first_name", "last_name", "email"]}),
        (_("Issuer and role"), {"fields": ["issuer", "groups", "is_active", "is_staff", "is_superuser", "user_permissions"]}),
        (_("Important dates"), {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [
        (None, {"classes": ["wide"], "fields": ["username", "usable_password", "password1", "password2"]}),
        (_("Issuer and role"), {"fields": ["issuer", "groups", "is_staff"]}),
    ]
    # What an issuer admin sees: no password hash, no per-user permissions.
    view_fieldsets = [
        (None, {"fields": ["username", "first_name", "last_name", "email"]}),
        (_("Issuer and role"), {"fields": ["issuer", "groups", "is_active", "is_staff", "last_login", "date_joined"]}),
    ]

    @admin.display(description=_("Roles"))
    def roles(self, obj) -> str:
        return ", ".join(g.name for g in obj.groups.all())

    def get_queryset(self, request):
        queryset = super().get_queryset(request).select_related("issuer").prefetch_related("groups")
        return scope_to_issuer(queryset, request.user)

    def get_fieldsets(self, request, obj=None):
        if obj is not None and not request.user.is_superuser:
            return self.view_fieldsets
        return super().get_fieldsets(request, obj)

    def get_list_filter(self, request):
        return self.list_filter if request.user.is_superuser else ["is_active", "groups"]

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    def has_view_permission(self, request, obj=None):
        if request.user.is_superuser or super().has_view_permission(request, obj):
            return True
        # getattr: the login page asks this for the anonymous user too.
        if getattr(request.user, "issuer_id", None) is None:
            return False
        return request.user.groups.filter(name=ISSUER_ADMIN).exists()

    def delete_model(self, request, obj):
        services.staff_user_delete(user=obj, actor=admin_actor(request))

    def user_change_password(self, request, id, form_url=""):
        # The password form needs the request (who acts); a copy of this admin for this request
        # carries it, instead of changing the shared admin.
        admin_for_request = copy.copy(self)
        admin_for_request.change_password_form = type(
            StaffPasswordForm.__name__, (StaffPasswordForm,), {"request": request}
        )
        return super(UserAdmin, admin_for_request).user_change_password(request, id, form_url)

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


admin.site.unregister(Group)
# The beat schedule is code-managed (CELERY_BEAT_SCHEDULE in settings): the scheduler's own admin pages would
# only invite edits that the next deploy undoes.
admin.site.unregister([PeriodicTask, IntervalSchedule, CrontabSchedule, SolarSchedule, ClockedSchedule])


@admin.register(Group)
class RoleAdmin(ReadOnlyAdminMixin, DjangoGroupAdmin):
    """The roles, read-only: their permissions are defined in apps.accounts.roles and set again
    on every migrate, so an edit here would be undone silently (and would be unaudited).
    Who holds a role is changed on the user's page, through the services."""


@admin.register(AccessAttempt)
class AccessAttemptAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Staff logins currently counted towards a lockout, for superusers to see who is locked out
    and from where; lifting a lock is `manage.py axes_reset_username`, not an edit here."""

    list_display = ["username", "ip_address", "failures_since_start", "attempt_time"]
    search_fields = ["username", "ip_address"]
    date_hierarchy = "attempt_time"
    fields = ["username", "ip_address", "user_agent", "path_info", "failures_since_start", "attempt_time"]

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_module_permission(self, request):
        return request.user.is_superuser
