from django.urls import path

from apps.threeds import apis

urlpatterns = [
    path("card-ranges", apis.CardRangeListApi.as_view(), name="card-range-list"),
    path("transactions", apis.TransactionListApi.as_view(), name="transaction-list"),
    path("transactions/<str:acs_trans_id>", apis.TransactionDetailApi.as_view(), name="transaction-detail"),
    path("transactions/<str:acs_trans_id>/stripe-import", apis.TransactionStripeImportApi.as_view(), name="transaction-stripe-import"),
    path("authentication-values/verify", apis.AuthenticationValueVerifyApi.as_view(), name="authentication-value-verify"),
]
