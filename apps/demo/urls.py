from django.urls import path

from apps.demo import views

# Served only with DEBUG (each view answers 404 otherwise).
urlpatterns = [
    path("app/", views.app_page, name="demo-app"),
    path("app/enrollments", views.enrollment_create, name="demo-app-enrollment"),
]
