from django.urls import path

from apps.cards import apis

urlpatterns = [
    path("cardholders", apis.CardholderListCreateApi.as_view(), name="cardholder-list"),
    path("cardholders/<str:cardholder_id>", apis.CardholderDetailApi.as_view(), name="cardholder-detail"),
    path("cardholders/<str:cardholder_id>/phones", apis.PhoneListCreateApi.as_view(), name="phone-list"),
    path("cardholders/<str:cardholder_id>/phones/<str:phone_id>", apis.PhoneDetailApi.as_view(), name="phone-detail"),
    path("card-products", apis.CardProductListCreateApi.as_view(), name="card-product-list"),
    path("card-products/<str:product_id>", apis.CardProductDetailApi.as_view(), name="card-product-detail"),
    path("cards", apis.CardListCreateApi.as_view(), name="card-list"),
    path("cards/<str:card_pk>", apis.CardDetailApi.as_view(), name="card-detail"),
]
