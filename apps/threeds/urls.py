from django.urls import path

from apps.threeds import views, views_app, views_browser

urlpatterns = [
    path("areq", views.areq, name="threeds-areq"),
    path("challenge", views_browser.challenge, name="threeds-challenge"),
    path("creq", views_app.creq, name="threeds-creq"),
]
