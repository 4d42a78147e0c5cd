from rest_framework import authentication, exceptions

from apps.core.throttling import failed_credentials_check, failed_credentials_record
from apps.issuers.services import api_key_authenticate


class IssuerPrincipal:
    """The caller of the issuer API: an API key acting for one issuer."""

    is_authenticated = True

    def __init__(self, api_key):
        self.api_key = api_key
        self.issuer = api_key.issuer

    def __str__(self) -> str:
        return f"api_key:{self.api_key.prefix}"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        # An address past its failed credentials is refused before the key is even looked at.
        failed_credentials_check(request)
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            failed_credentials_record(request)
            raise exceptions.AuthenticationFailed("Use Authorization: Bearer <api key>.")
        api_key = api_key_authenticate(raw_key=token.strip())
        if api_key is None:
            failed_credentials_record(request)
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        return IssuerPrincipal(api_key), api_key

    def authenticate_header(self, request):
        return 'Bearer realm="issuer-api"'
