"""The answer to a locked-out staff login (django-axes' AXES_LOCKOUT_CALLABLE): 429, Retry-After
and a page that says the account is locked for now — never the login form again."""

from axes.helpers import get_cool_off
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers


def lockout_response(request, original_response=None, credentials=None):
    cool_off = get_cool_off(request)
    seconds = int(cool_off.total_seconds()) if cool_off else 0
    context = {"minutes": max(1, round(seconds / 60)) if seconds else None}
    response = render(request, "accounts/locked_out.html", context, status=429)
    if seconds:
        response["Retry-After"] = str(seconds)
    add_never_cache_headers(response)
    return response
