"""Sign-in, session cookie and CSRF for the console.

The session is an encrypted cookie (aiohttp-session's Fernet storage) whose key is derived
from the admin token, so changing the token signs everyone out. Every POST carries the
session's CSRF token; the cookie is HttpOnly, SameSite=Strict, and Secure over TLS.
"""

import base64
import hmac
import secrets

from aiohttp import web
from aiohttp_session import Session
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ingress.setup_pages import PAGE_HEADERS

COOKIE_NAME = "zoho_cdp_console"
CSRF_FIELD = "csrf_token"
SIGNED_IN = "signed_in"
CSRF = "csrf"

# The set-up page's headers, with a policy that lets the console load its own script and
# style and post its own forms.
CONSOLE_HEADERS = PAGE_HEADERS | {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
}


def session_fernet(admin_token: str) -> Fernet:
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"zoho-cdp console session"
    ).derive(admin_token.encode())
    return Fernet(base64.urlsafe_b64encode(key))


class ConsoleCookieStorage(EncryptedCookieStorage):
    """Marks the cookie Secure when the request came over TLS."""

    def __init__(self, fernet: Fernet, max_age_s: int) -> None:
        options = {
            "cookie_name": COOKIE_NAME,
            "max_age": max_age_s,
            "path": "/console",
            "httponly": True,
            "samesite": "Strict",
        }
        super().__init__(fernet, secure=False, **options)  # type: ignore[arg-type]
        self._over_tls = EncryptedCookieStorage(fernet, secure=True, **options)  # type: ignore[arg-type]

    async def save_session(
        self, request: web.Request, response: web.StreamResponse, session: Session
    ) -> None:
        if request.secure:
            await self._over_tls.save_session(request, response, session)
        else:
            await super().save_session(request, response, session)


def token_matches(expected: str, presented: str) -> bool:
    # Constant-time, so timing does not reveal how much of a guess was right.
    return bool(expected) and hmac.compare_digest(expected.encode(), presented.encode())


def csrf_token(session: Session) -> str:
    token = session.get(CSRF)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[CSRF] = token
    return token


def csrf_ok(session: Session, presented: str | None) -> bool:
    expected = session.get(CSRF)
    return (
        isinstance(expected, str) and presented is not None and token_matches(expected, presented)
    )
