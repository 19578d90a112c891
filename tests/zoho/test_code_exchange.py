"""The Zoho code exchange without I/O: the token URL, the form, and Zoho's answers
mapped to sentences with a fitting status."""

import json

import pytest

from tests.builders import zoho_source as source
from zoho.accounts import exchange_form, token_url
from zoho.code_exchange import Exchanged, ExchangeFailed, interpret_exchange, unreachable

URL = "https://accounts.zoho.eu/oauth/v2/token"


def test_the_token_url_is_the_data_centres() -> None:
    assert (
        token_url("https://accounts.zoho.com.au/") == "https://accounts.zoho.com.au/oauth/v2/token"
    )


def test_the_form_carries_the_code_and_the_client() -> None:
    assert exchange_form(source().client_id, source().client_secret, "1000.code") == {
        "grant_type": "authorization_code",
        "client_id": "1000.CLIENT",
        "client_secret": "the-client-secret",
        "code": "1000.code",
    }


def test_an_answer_with_an_access_token_is_a_success() -> None:
    body = json.dumps(
        {
            "access_token": "1000.a",
            "refresh_token": "1000.r",
            "api_domain": "https://www.zohoapis.eu",
            "token_type": "Bearer",
            "expires_in": 3600,
        }
    ).encode()
    result = interpret_exchange(200, body, URL)
    assert isinstance(result, Exchanged)
    assert result.refresh_token.get_secret_value() == "1000.r"
    assert result.api_domain == "https://www.zohoapis.eu"
    assert "1000.r" not in repr(result)


@pytest.mark.parametrize(
    ("status", "body", "http_status", "words", "zoho_error"),
    [
        # Zoho answers errors with HTTP 200: the body decides.
        (200, b'{"error": "invalid_code"}', 400, "has expired or was already used", "invalid_code"),
        (200, b'{"error": "invalid_client"}', 502, "another data centre", "invalid_client"),
        (
            200,
            b'{"error": "invalid_client_secret"}',
            502,
            "refused the client_secret",
            "invalid_client_secret",
        ),
        (
            200,
            b'{"error": "Access Denied", "status": "failure"}',
            503,
            "Wait ten minutes",
            "Access Denied",
        ),
        (
            200,
            b'{"error": "invalid_redirect_uri"}',
            502,
            "'invalid_redirect_uri'",
            "invalid_redirect_uri",
        ),
        (200, b'{"access_token": "1000.a"}', 502, "gave no refresh token", None),
        (404, b"<html>Not found</html>", 502, "did not give a token answer (HTTP 404)", None),
        (200, b"[]", 502, "did not give a token answer", None),
        (500, b"{}", 502, "HTTP 500 without a token", "HTTP 500 without a token"),
    ],
)
def test_zoho_refusals_become_sentences_with_a_fitting_status(
    status: int, body: bytes, http_status: int, words: str, zoho_error: str | None
) -> None:
    result = interpret_exchange(status, body, URL)
    assert isinstance(result, ExchangeFailed)
    assert (result.status, result.zoho_error) == (http_status, zoho_error)
    assert words in result.message
    assert result.token_url == URL


def test_the_expired_code_sentence_says_what_to_do() -> None:
    result = interpret_exchange(200, b'{"error": "invalid_code"}', URL)
    assert isinstance(result, ExchangeFailed)
    assert result.message.startswith(
        "The code has expired or was already used: generate a new one in the Zoho API "
        "console and open this link within a few minutes."
    )


@pytest.mark.parametrize(("timed_out", "status"), [(True, 504), (False, 502)])
def test_an_unreachable_zoho_names_the_url(timed_out: bool, status: int) -> None:
    result = unreachable(URL, timed_out)
    assert result.status == status and URL in result.message
