from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OtpConfig(AppConfig):
    name = "apps.otp"
    label = "otp"
    verbose_name = _("One-time passwords")

    def ready(self) -> None:
        from apps.issuers.signals import issuer_created
        from apps.otp.services import otp_policy_create_default

        def on_issuer_created(sender, *, issuer, otp_delivery, **kwargs):
            # In issuer_create's transaction: no issuer without its default OTP policy.
            otp_policy_create_default(issuer=issuer, actor="system", delivery_mode=otp_delivery)

        # Strong reference (weak=False): the receiver is a closure that nothing else holds.
        issuer_created.connect(on_issuer_created, weak=False, dispatch_uid="otp.issuer_created")
