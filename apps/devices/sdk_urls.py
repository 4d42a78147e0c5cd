from django.urls import path

from apps.devices import apis
from apps.oob import apis as oob_apis

urlpatterns = [
    path("registrations/options", apis.RegistrationOptionsApi.as_view(), name="sdk-registration-options"),
    path("registrations", apis.RegistrationCreateApi.as_view(), name="sdk-registration-create"),
    path("registrations/current", apis.RegistrationCurrentApi.as_view(), name="sdk-registration-current"),
    path("authn-requests", oob_apis.AuthnRequestListApi.as_view(), name="sdk-authn-requests"),
    path("authn-requests/<str:acs_trans_id>/proceed", oob_apis.AuthnRequestProceedApi.as_view(), name="sdk-authn-request-proceed"),
    path("authn-requests/<str:acs_trans_id>/cancel", oob_apis.AuthnRequestCancelApi.as_view(), name="sdk-authn-request-cancel"),
    path("authn-requests/<str:acs_trans_id>/assertion", oob_apis.AuthnRequestAssertionApi.as_view(), name="sdk-authn-request-assertion"),
]
