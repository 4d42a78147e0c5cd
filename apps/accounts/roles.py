"""Staff roles as groups, with the model permissions each role holds.

- issuer admin: everything of its issuer, including API keys and policies;
- operator: day-to-day enrollment (cardholders, phones, cards), sees the rest;
- analyst: reads only.
"""

ISSUER_ADMIN = "Issuer admin"
OPERATOR = "Operator"
ANALYST = "Analyst"
ROLES = (ISSUER_ADMIN, OPERATOR, ANALYST)

# app_label.model → actions, per role. Views are implied for any model a role can touch.
_ENROLLMENT = ["cards.cardholder", "cards.phone", "cards.card"]
_CONFIG = [
    "cards.cardproduct",
    "cards.binrange",
    "issuers.apikey",
    "otp.otppolicy",
    "sms.smsproviderconfig",
    "threeds.riskpolicy",
]
_READ_ONLY = [
    "audit.auditevent",
    "issuers.issuer",
    "issuers.bingrant",  # granted by the platform operator (superuser) only
    "otp.otppolicyversion",
    "otp.otpsession",
    "otp.otpcode",
    "otp.otprefusal",
    "sms.smsdelivery",
    "sms.smsattempt",
    "threeds.transaction",
    "threeds.challenge",
    "oob.authnrequest",
    "push.pushattempt",
]

# Outbound deliveries: everybody reads them; "change" is the permission to retry one by hand.
_DELIVERIES = ["webhooks.webhookdelivery", "threeds.rreqdelivery", "push.pushdelivery"]

ROLE_PERMISSIONS: dict[str, dict[str, list[str]]] = {
    ISSUER_ADMIN: {
        **{m: ["view", "add", "change", "delete"] for m in _ENROLLMENT + _CONFIG},
        **{m: ["view"] for m in _READ_ONLY},
        **{m: ["view", "change"] for m in _DELIVERIES},
    },
    OPERATOR: {
        **{m: ["view", "add", "change", "delete"] for m in _ENROLLMENT},
        **{m: ["view"] for m in _CONFIG + _READ_ONLY},
        **{m: ["view", "change"] for m in _DELIVERIES},
    },
    ANALYST: {m: ["view"] for m in _ENROLLMENT + _CONFIG + _READ_ONLY + _DELIVERIES},
}
# Devices are registered by the app (WebAuthn), never added by staff; staff may revoke or remove them.
ROLE_PERMISSIONS[ISSUER_ADMIN]["devices.device"] = ["view", "change", "delete"]
ROLE_PERMISSIONS[OPERATOR]["devices.device"] = ["view", "change", "delete"]
ROLE_PERMISSIONS[ANALYST]["devices.device"] = ["view"]
ROLE_PERMISSIONS[ISSUER_ADMIN]["analyst.accessrecord"] = ["view"]  # who viewed and exported what (not analysts)


def sync_role_groups(**kwargs) -> None:
    """Create or update the role groups; runs after every migrate so new models join roles."""
    from django.contrib.auth.models import Group, Permission

    for role, grants in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        perms = []
        for model_label, actions in grants.items():
            app_label, model = model_label.split(".")
            for action in actions:
                perm = Permission.objects.filter(
                    content_type__app_label=app_label, codename=f"{action}_{model}"
                ).first()
                if perm is not None:
                    perms.append(perm)
        group.permissions.set(perms)
