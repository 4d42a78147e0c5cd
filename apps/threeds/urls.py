from django.urls import path

from apps.threeds import views, views_app, views_browser

urlpatterns = [
    path("areq", views.areq, name="threeds-areq"),
    path("challenge", views_browser.challenge, name="threeds-challenge"),
    path("challenge/status", views_browser.challenge_status, name="threeds-challenge-status"),
    path("creq", views_app.creq, name="threeds-creq"),
]
