from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _


class User(AbstractUser):
    """Issuer staff. A staff user belongs to one issuer and sees only its data; only a
    superuser may have no issuer (and sees all)."""

    issuer = models.ForeignKey(
        "issuers.Issuer", verbose_name=_("issuer"), null=True, blank=True, on_delete=models.PROTECT, related_name="staff_users"
    )

    def clean(self):
        super().clean()
        if self.is_staff and not self.is_superuser and self.issuer_id is None:
            raise ValidationError({"issuer": _("A staff user who is not a superuser must belong to an issuer.")})
