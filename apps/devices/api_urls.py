from django.urls import path

from apps.devices import apis

urlpatterns = [
    path(
        "cardholders/<str:cardholder_id>/device-enrollments",
        apis.DeviceEnrollmentCreateApi.as_view(),
        name="device-enrollment-create",
    ),
]
