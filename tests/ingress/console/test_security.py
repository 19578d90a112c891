"""The console's cookie and CSRF rules, without a server."""

from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from aiohttp_session import Session

from ingress.console.security import (
    COOKIE_NAME,
    ConsoleCookieStorage,
    csrf_ok,
    csrf_token,
    session_fernet,
    token_matches,
)


async def cookie_header(scheme: str) -> str:
    storage = ConsoleCookieStorage(session_fernet("an-admin-token-0123456789"), max_age_s=60)
    request = make_mocked_request("GET", "/console/sources").clone(scheme=scheme)
    session = Session(None, data=None, new=True, max_age=60)
    session["signed_in"] = True
    response = web.Response()
    await storage.save_session(request, response, session)
    return response.cookies[COOKIE_NAME].output()


async def test_the_cookie_is_secure_over_tls_and_strict_always() -> None:
    over_tls, plain = await cookie_header("https"), await cookie_header("http")
    assert "Secure" in over_tls and "Secure" not in plain
    for header in (over_tls, plain):
        assert "HttpOnly" in header and "SameSite=Strict" in header and "Path=/console" in header


def test_another_admin_token_cannot_read_the_session() -> None:
    sealed = session_fernet("an-admin-token-0123456789").encrypt(b"{}")
    assert session_fernet("an-admin-token-0123456789").decrypt(sealed) == b"{}"
    try:
        session_fernet("another-admin-token-0123456789").decrypt(sealed)
    except Exception as error:  # noqa: BLE001 - any refusal will do
        assert type(error).__name__ == "InvalidToken"
    else:
        raise AssertionError("a session sealed under one token opened under another")


def test_the_csrf_token_belongs_to_its_session() -> None:
    session = Session(None, data=None, new=True)
    token = csrf_token(session)
    assert csrf_token(session) == token
    assert csrf_ok(session, token)
    assert not csrf_ok(session, None)
    assert not csrf_ok(session, token[:-1] + "x")
    assert not csrf_ok(Session(None, data=None, new=True), token)


def test_an_empty_admin_token_matches_nothing() -> None:
    assert not token_matches("", "")
    assert token_matches("t" * 20, "t" * 20)
    assert not token_matches("t" * 20, "t" * 19)
