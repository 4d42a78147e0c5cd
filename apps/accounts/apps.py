from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"

    def ready(self):
        from apps.accounts.roles import sync_role_groups

        # Every app's post_migrate: permissions of apps later in the list exist only by then.
        post_migrate.connect(sync_role_groups, dispatch_uid="sync_role_groups")
