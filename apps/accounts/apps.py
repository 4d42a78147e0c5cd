from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"
    verbose_name = _("Accounts")

    def ready(self):
        from apps.accounts.roles import sync_role_groups

        # Every app's post_migrate: permissions of apps later in the list exist only by then.
        post_migrate.connect(sync_role_groups, dispatch_uid="sync_role_groups")
