"""SMS in the admin: read-only deliveries scoped to the staff user's issuer, no code or full
number on any page, and a provider auth token that can be written but never read back."""

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from apps.accounts.models import User
from apps.sms.models import SmsProviderConfig
from apps.sms.services import sms_delivery_create
from apps.sms.tasks import sms_send
from tests.fakes.twilio_server import PRIMARY_SID, PRIMARY_TOKEN
from tests.sms.conftest import CODE, new_number, otp_body, reload
from tests.support.delivery import sweep_until_settled

pytestmark = pytest.mark.django_db


def sent_delivery(issuer):
    delivery = sms_delivery_create(issuer=issuer, to=new_number(), body=otp_body(), secret=CODE)
    sms_send.apply(args=[str(delivery.pk)])
    sweep_until_settled("sms")  # its retries, as the sweep makes them in process
    return reload(delivery)


def staff(issuer, *perms) -> Client:
    user = User.objects.create_user(username=f"staff-{issuer.issuer_id}", password="x", is_staff=True, issuer=issuer)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="sms", codename__in=perms))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def superuser_client():
    client = Client()
    client.force_login(User.objects.create_superuser(username="root", password="x"))
    return client


def test_delivery_pages_show_the_tries_but_never_the_code_or_the_number(superuser_client, issuer, fake_twilio):
    fake_twilio.program(PRIMARY_SID, "500")
    delivery = sent_delivery(issuer)
    for url in (reverse("admin:sms_smsdelivery_changelist"), reverse("admin:sms_smsdelivery_change", args=[delivery.pk])):
        html = superuser_client.get(url).content.decode()
        assert delivery.masked_to in html
        assert CODE not in html and delivery.to not in html and delivery.to[1:] not in html
    html = superuser_client.get(reverse("admin:sms_smsdelivery_change", args=[delivery.pk])).content.decode()
    assert "failed_transient" in html and "succeeded" in html and delivery.provider_message_id in html


def test_deliveries_are_read_only(superuser_client, issuer, fake_twilio):
    delivery = sent_delivery(issuer)
    assert superuser_client.get(reverse("admin:sms_smsdelivery_add")).status_code == 403
    assert superuser_client.post(reverse("admin:sms_smsdelivery_delete", args=[delivery.pk]), {"post": "yes"}).status_code == 403
    html = superuser_client.get(reverse("admin:sms_smsdelivery_change", args=[delivery.pk])).content.decode()
    assert 'name="_save"' not in html


def test_staff_see_only_their_issuers_deliveries(issuer, other_issuer, fake_twilio):
    ours, theirs = sent_delivery(issuer), sent_delivery(other_issuer)
    client = staff(issuer, "view_smsdelivery", "view_smsattempt")
    html = client.get(reverse("admin:sms_smsdelivery_changelist")).content.decode()
    assert ours.masked_to in html and theirs.masked_to not in html
    assert client.get(reverse("admin:sms_smsdelivery_change", args=[ours.pk])).status_code == 200
    response = client.get(reverse("admin:sms_smsdelivery_change", args=[theirs.pk]))
    assert response.status_code == 302  # "does not exist", like any row outside the scope


def provider_form(**overrides) -> dict:
    return {
        "role": "primary", "backend": "twilio", "is_active": "on", "account_sid": PRIMARY_SID,
        "auth_token": PRIMARY_TOKEN, "from_number": "+15005550006", "messaging_service_sid": "", **overrides,
    }


def test_the_auth_token_is_write_only(issuer):
    client = staff(issuer, "add_smsproviderconfig", "change_smsproviderconfig", "view_smsproviderconfig")
    response = client.post(reverse("admin:sms_smsproviderconfig_add"), provider_form())
    assert response.status_code == 302, response.content.decode()[:2000]
    config = SmsProviderConfig.objects.get()
    assert config.issuer == issuer and config.get_auth_token() == PRIMARY_TOKEN
    assert PRIMARY_TOKEN.encode() not in bytes(config.auth_token_blob)

    change = reverse("admin:sms_smsproviderconfig_change", args=[config.pk])
    assert PRIMARY_TOKEN not in client.get(change).content.decode()
    # Saved again without a token: the stored one stays.
    assert client.post(change, provider_form(auth_token="", from_number="MYBANK")).status_code == 302
    config.refresh_from_db()
    assert (config.from_number, config.get_auth_token()) == ("MYBANK", PRIMARY_TOKEN)


def test_a_new_account_needs_its_token_typed_again(issuer):
    client = staff(issuer, "add_smsproviderconfig", "change_smsproviderconfig", "view_smsproviderconfig")
    client.post(reverse("admin:sms_smsproviderconfig_add"), provider_form())
    config = SmsProviderConfig.objects.get()
    change = reverse("admin:sms_smsproviderconfig_change", args=[config.pk])
    response = client.post(change, provider_form(auth_token="", account_sid="AC" + "d4" * 16))
    assert response.status_code == 200 and "Enter the account" in response.content.decode()


def test_a_twilio_provider_needs_a_real_account_sid_and_a_sender(issuer):
    client = staff(issuer, "add_smsproviderconfig", "view_smsproviderconfig")
    response = client.post(reverse("admin:sms_smsproviderconfig_add"), provider_form(account_sid="nope", from_number=""))
    html = response.content.decode()
    assert response.status_code == 200 and "32 hex digits" in html and "Messaging Service SID" in html
    assert not SmsProviderConfig.objects.exists()
