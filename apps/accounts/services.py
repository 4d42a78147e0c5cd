"""Staff users and their memberships (issuer, roles, permissions). Writes only, each audited.

An audit event belongs to an issuer: changes to a user without one (a platform superuser) are
recorded under the issuer it had before, or only in the log when it never had one."""

import logging

from django.db import transaction

from apps.accounts.models import User
from apps.audit.services import audit_data_clean, audit_record

logger = logging.getLogger("apps.audit")

# What staff may change on a user besides the password (which has staff_user_set_password).
USER_FIELDS = ("username", "first_name", "last_name", "email", "issuer", "is_active", "is_staff", "is_superuser",
               "last_login", "date_joined")
USER_M2M = ("groups", "user_permissions")


def _describe(user: User, field: str):
    if field == "issuer":
        return user.issuer.issuer_id if user.issuer_id else None
    if field == "groups":
        return sorted(g.name for g in user.groups.all())
    if field == "user_permissions":
        return sorted(f"{p.content_type.app_label}.{p.codename}" for p in user.user_permissions.select_related("content_type"))
    return getattr(user, field)


def _audit(user: User, *, kind: str, actor: str, issuer=None, data: dict) -> None:
    issuer = issuer or user.issuer
    data = {"user": str(user.pk), "username": user.username, **data}
    if issuer is None:
        logger.info("%s by %s (no issuer to file it under): %s", kind, actor, audit_data_clean(data))
        return
    audit_record(issuer=issuer, kind=kind, actor=actor, obj=user, data=data)


@transaction.atomic
def staff_user_create(
    *,
    username: str,
    password: str | None,
    actor: str,
    issuer=None,
    groups=(),
    is_staff: bool = True,
    is_superuser: bool = False,
    **profile,
) -> User:
    """password None: the user cannot log in with a password (e.g. single sign-on only)."""
    user = User(username=username, issuer=issuer, is_staff=is_staff, is_superuser=is_superuser, **profile)
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.full_clean()
    user.save()
    user.groups.set(groups)
    _audit(user, kind="staff_user.created", actor=actor, data={
        "issuer": _describe(user, "issuer"), "groups": _describe(user, "groups"), "is_staff": is_staff,
        "is_superuser": is_superuser, "usable_password": bool(password),
    })
    return user


@transaction.atomic
def staff_user_update(*, user: User, actor: str, **changes) -> User:
    fields = [f for f in USER_FIELDS if f in changes]
    m2m = [f for f in USER_M2M if f in changes]
    before = {f: _describe(user, f) for f in fields + m2m}
    previous_issuer = user.issuer
    for field in fields:
        setattr(user, field, changes[field])
    if fields:
        user.full_clean(exclude=["password"])
        user.save(update_fields=fields)
    for field in m2m:
        getattr(user, field).set(changes[field])
    after = {f: _describe(user, f) for f in fields + m2m}
    changed = sorted(f for f in after if after[f] != before[f])
    if changed:
        data = {"fields": changed, "before": {f: before[f] for f in changed}, "after": {f: after[f] for f in changed}}
        _audit(user, kind="staff_user.updated", actor=actor, issuer=user.issuer or previous_issuer, data=data)
        if previous_issuer is not None and user.issuer_id not in (None, previous_issuer.pk):
            # Moved between issuers: the one it left records it too.
            _audit(user, kind="staff_user.updated", actor=actor, issuer=previous_issuer, data=data)
    return user


def staff_user_set_password(*, user: User, password: str | None, actor: str) -> User:
    """password None: no password login any more."""
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.save(update_fields=["password"])
    _audit(user, kind="staff_user.password_set", actor=actor, data={"usable_password": bool(password)})
    return user


@transaction.atomic
def staff_user_delete(*, user: User, actor: str) -> None:
    data = {"issuer": _describe(user, "issuer"), "groups": _describe(user, "groups")}
    issuer, pk, username = user.issuer, user.pk, user.username
    user.delete()
    user.pk, user.username = pk, username  # for the event's object id and name
    _audit(user, kind="staff_user.deleted", actor=actor, issuer=issuer, data=data)
