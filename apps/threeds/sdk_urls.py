"""The OOB part of the SDK API (the issuer app's answer), under /sdk/v1/ next to apps.devices'
registrations (issuer_portal/urls.py includes both). Here, not in apps.oob: the answers decide the
challenge (apps/threeds/oob_decisions.py)."""

from django.urls import path

from apps.threeds import oob_apis as apis

urlpatterns = [
    path("authn-requests", apis.AuthnRequestListApi.as_view(), name="sdk-authn-requests"),
    path("authn-requests/<str:acs_trans_id>/proceed", apis.AuthnRequestProceedApi.as_view(), name="sdk-authn-request-proceed"),
    path("authn-requests/<str:acs_trans_id>/cancel", apis.AuthnRequestCancelApi.as_view(), name="sdk-authn-request-cancel"),
    path("authn-requests/<str:acs_trans_id>/assertion", apis.AuthnRequestAssertionApi.as_view(), name="sdk-authn-request-assertion"),
]
