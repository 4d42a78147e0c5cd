from django.urls import path

from apps.sms import views

app_name = "sms"

urlpatterns = [
    path("twilio/status/<slug:token>", views.twilio_status_callback, name="twilio-status"),
]
