from django.urls import path

from apps.analyst import views

app_name = "analyst"

urlpatterns = [
    path("", views.transaction_list_view, name="transactions"),
    path("transactions.csv", views.transaction_export_view, name="export"),
    path("transactions/<str:acs_trans_id>/", views.transaction_detail_view, name="transaction"),
    path("transactions/<str:acs_trans_id>/label", views.transaction_label_view, name="label"),
    path("dashboard/", views.dashboard_view, name="dashboard"),
    path("exports/", views.export_list_view, name="exports"),
    path("exports/new", views.export_create_view, name="export_create"),
    path("exports/<uuid:job_id>/", views.export_job_view, name="export_job"),
    path("exports/<uuid:job_id>/download", views.export_download_view, name="export_download"),
]
