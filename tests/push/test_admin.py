"""Push deliveries in the admin: read-only, with every try, scoped to the staff user's issuer,
and never the device's push token."""

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from apps.accounts.models import User
from tests.push.conftest import create, make_device, send_with_retries

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_tasks")]

TOKEN = "fcm-admin-test-token:APA91b" + "q" * 60


def sent(issuer, fake_fcm, *behaviours):
    device = make_device(issuer=issuer, push_token=f"{TOKEN}-{issuer.issuer_id}")
    fake_fcm.program(device.get_push_token(), *behaviours)
    return send_with_retries(create(device))


def staff(issuer) -> Client:
    user = User.objects.create_user(username=f"staff-{issuer.issuer_id}", password="x", is_staff=True, issuer=issuer)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="push", codename__startswith="view_"))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def superuser_client():
    client = Client()
    client.force_login(User.objects.create_superuser(username="root", password="x"))
    return client


def test_delivery_pages_show_every_try_but_never_the_token(superuser_client, issuer, fake_fcm):
    delivery = sent(issuer, fake_fcm, "503")
    for url in (reverse("admin:push_pushdelivery_changelist"), reverse("admin:push_pushdelivery_change", args=[delivery.pk])):
        response = superuser_client.get(url)
        assert response.status_code == 200
        html = response.content.decode()
        assert str(delivery.acs_trans_id) in html and TOKEN not in html
    html = superuser_client.get(reverse("admin:push_pushdelivery_change", args=[delivery.pk])).content.decode()
    assert "failed_transient" in html and "succeeded" in html and "UNAVAILABLE" in html
    assert delivery.provider_message_id in html


def test_deliveries_are_read_only(superuser_client, issuer, fake_fcm):
    delivery = sent(issuer, fake_fcm)
    assert superuser_client.get(reverse("admin:push_pushdelivery_add")).status_code == 403
    delete = reverse("admin:push_pushdelivery_delete", args=[delivery.pk])
    assert superuser_client.post(delete, {"post": "yes"}).status_code == 403
    html = superuser_client.get(reverse("admin:push_pushdelivery_change", args=[delivery.pk])).content.decode()
    assert 'name="_save"' not in html


def test_staff_see_only_their_issuers_deliveries(issuer, other_issuer, fake_fcm):
    ours, theirs = sent(issuer, fake_fcm), sent(other_issuer, fake_fcm)
    client = staff(issuer)
    html = client.get(reverse("admin:push_pushdelivery_changelist")).content.decode()
    assert str(ours.acs_trans_id) in html and str(theirs.acs_trans_id) not in html
    assert client.get(reverse("admin:push_pushdelivery_change", args=[ours.pk])).status_code == 200
    assert client.get(reverse("admin:push_pushdelivery_change", args=[theirs.pk])).status_code == 302
