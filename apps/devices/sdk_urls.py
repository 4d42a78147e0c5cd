from django.urls import path

from apps.devices import apis

urlpatterns = [
    path("registrations/options", apis.RegistrationOptionsApi.as_view(), name="sdk-registration-options"),
    path("registrations", apis.RegistrationCreateApi.as_view(), name="sdk-registration-create"),
    path("registrations/current", apis.RegistrationCurrentApi.as_view(), name="sdk-registration-current"),
]
