from django.urls import path

from apps.devices import apis

# The device part of the SDK API, under /sdk/v1/; the OOB part (authn-requests) is apps/threeds/sdk_urls.py.
urlpatterns = [
    path("registrations/options", apis.RegistrationOptionsApi.as_view(), name="sdk-registration-options"),
    path("registrations", apis.RegistrationCreateApi.as_view(), name="sdk-registration-create"),
    path("registrations/current", apis.RegistrationCurrentApi.as_view(), name="sdk-registration-current"),
]
