from django.urls import path

from apps.analyst import views

app_name = "analyst"

urlpatterns = [
    path("", views.transaction_list_view, name="transactions"),
    path("transactions.csv", views.transaction_export_view, name="export"),
    path("transactions/<str:acs_trans_id>/", views.transaction_detail_view, name="transaction"),
    path("dashboard/", views.dashboard_view, name="dashboard"),
]
