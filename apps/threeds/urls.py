from django.urls import path

from apps.threeds import views, views_app, views_browser, views_method

urlpatterns = [
    path("areq", views.areq, name="threeds-areq"),
    path("challenge", views_browser.challenge, name="threeds-challenge"),
    path("challenge/status", views_browser.challenge_status, name="threeds-challenge-status"),
    path("creq", views_app.creq, name="threeds-creq"),
    path("method", views_method.method_page, name="threeds-method"),
    path("method/data", views_method.method_collect, name="threeds-method-data"),
]
