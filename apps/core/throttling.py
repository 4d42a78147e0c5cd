"""Throttling of the machine APIs (SPEC §4), on DRF's throttles and the Django cache.

- Failed credentials (API key, device token, enrollment token) are counted per client address:
  past FAILED_CREDENTIALS_RATE, every credential from that address is answered 429 with
  Retry-After until the window has room again — a right one too, so that guessing learns nothing.
- Each API key and each device has its own request rate (API_KEY_RATE, DEVICE_RATE).

The counters live in the cache (Redis when CACHE_URL names one, else this process's memory).
If the cache does not answer, the throttles let the request through and log a warning: an
outage of the cache must not take the API down, and the credentials are still checked.

Staff logins (admin and analyst) are django-axes' business; it uses client_address() too.
"""

from __future__ import annotations

import ipaddress
import logging

from django.conf import settings
from rest_framework import exceptions
from rest_framework.throttling import SimpleRateThrottle

logger = logging.getLogger(__name__)


def client_address(request) -> str:
    """The client's address. With TRUSTED_PROXY_COUNT proxies in front, each appends to
    X-Forwarded-For the address it received from: the client's is that many entries from the
    right. What lies further left was written by the client itself and is never trusted."""
    meta = request.META
    remote = meta.get("REMOTE_ADDR", "") or ""
    count = settings.TRUSTED_PROXY_COUNT
    if count <= 0:
        return remote
    forwarded = [part.strip() for part in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if not forwarded:
        return remote
    candidate = forwarded[-min(count, len(forwarded))]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote


class _SettingsRateThrottle(SimpleRateThrottle):
    """A SimpleRateThrottle whose rate is a project setting (read when used, not at import) and
    which lets the request through when the cache is down."""

    rate_setting = ""

    def get_rate(self):
        return getattr(settings, self.rate_setting)

    def allow_request(self, request, view):
        try:
            return super().allow_request(request, view)
        except Exception as exc:  # the cache is down: fail open, say so
            logger.warning("throttle %s skipped: cache unavailable (%s)", self.scope, exc.__class__.__name__)
            return True


class FailedCredentialThrottle(_SettingsRateThrottle):
    """Counts failures only: `check` before a credential is looked at, `record` after a wrong one."""

    scope = "failed_credentials"
    rate_setting = "FAILED_CREDENTIALS_RATE"

    def get_cache_key(self, request, view=None):
        return self.cache_format % {"scope": self.scope, "ident": client_address(request)}

    def _history(self, request) -> None:
        self.key = self.get_cache_key(request)
        self.history = self.cache.get(self.key, [])
        self.now = self.timer()
        while self.history and self.history[-1] <= self.now - self.duration:
            self.history.pop()

    def check(self, request) -> None:
        """Raises Throttled (429, Retry-After) when this address is past its failures."""
        if self.rate is None:
            return
        try:
            self._history(request)
        except Exception as exc:
            logger.warning("failed-credential throttle skipped: cache unavailable (%s)", exc.__class__.__name__)
            return
        if len(self.history) >= self.num_requests:
            logger.info("failed-credential throttle: %s refused", client_address(request))
            raise exceptions.Throttled(wait=self.wait())

    def record(self, request) -> None:
        if self.rate is None:
            return
        try:
            self._history(request)
            self.history.insert(0, self.now)
            self.cache.set(self.key, self.history, self.duration)
        except Exception as exc:
            logger.warning("failed credential not counted: cache unavailable (%s)", exc.__class__.__name__)


def failed_credentials_check(request) -> None:
    FailedCredentialThrottle().check(request)


def failed_credentials_record(request) -> None:
    FailedCredentialThrottle().record(request)


class ApiKeyRateThrottle(_SettingsRateThrottle):
    """Requests per API key (the issuer API)."""

    scope = "api_key"
    rate_setting = "API_KEY_RATE"

    def get_cache_key(self, request, view):
        api_key = getattr(request.user, "api_key", None)
        return None if api_key is None else self.cache_format % {"scope": self.scope, "ident": api_key.pk}


class DeviceRateThrottle(_SettingsRateThrottle):
    """Requests per device (the SDK API)."""

    scope = "device"
    rate_setting = "DEVICE_RATE"

    def get_cache_key(self, request, view):
        device = getattr(request.user, "device", None)
        return None if device is None else self.cache_format % {"scope": self.scope, "ident": device.pk}
