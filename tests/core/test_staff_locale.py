"""Staff pages follow the person's language; machine and cardholder interfaces do not."""

import pytest


@pytest.mark.django_db
def test_admin_login_in_japanese_when_the_browser_asks(client):
    page = client.get("/admin/login/", HTTP_ACCEPT_LANGUAGE="ja,en;q=0.5")
    assert page.status_code == 200
    assert page["Content-Language"] == "ja"
    assert "ユーザー名" in page.content.decode()


@pytest.mark.django_db
def test_language_cookie_wins_over_the_browser(client):
    client.cookies["django_language"] = "en"
    page = client.get("/admin/login/", HTTP_ACCEPT_LANGUAGE="ja")
    assert page["Content-Language"] == "en"
    assert "Username" in page.content.decode()


@pytest.mark.django_db
def test_set_language_sets_the_cookie(client):
    response = client.post("/i18n/setlang/", {"language": "ja", "next": "/admin/login/"})
    assert response.status_code == 302
    assert response.cookies["django_language"].value == "ja"


@pytest.mark.django_db
def test_unknown_language_falls_back_to_english(client):
    page = client.get("/admin/login/", HTTP_ACCEPT_LANGUAGE="fr")
    assert page["Content-Language"] == "en"


@pytest.mark.django_db
def test_api_errors_stay_english_whatever_the_browser(client):
    response = client.get("/api/v1/cards/1", HTTP_ACCEPT_LANGUAGE="ja")
    assert response.status_code == 401
    assert "Content-Language" not in response
    assert any(c.isascii() and c.isalpha() for c in response.content.decode())
    assert not any("\u3040" <= c <= "\u30ff" for c in response.content.decode())
