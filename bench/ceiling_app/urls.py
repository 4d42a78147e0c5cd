from django.urls import path

from bench.ceiling_app import views

urlpatterns = [path("3ds/v2/areq", views.one_insert)]
