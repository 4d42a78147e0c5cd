from django.urls import path

from apps.threeds import views

urlpatterns = [
    path("areq", views.areq, name="threeds-areq"),
]
