"""Zoho's accounts servers: one per data centre, each with its own token URL."""

from pydantic import SecretStr

# What the set-up flow asks for: reading records and, for the sweep, settings.
SCOPE = "ZohoCRM.modules.ALL,ZohoCRM.settings.ALL"
DEFAULT_ACCOUNTS_URL = "https://accounts.zoho.com"
DATA_CENTRES = (
    "accounts.zoho.com",
    "accounts.zoho.eu",
    "accounts.zoho.in",
    "accounts.zoho.com.au",
    "accounts.zoho.jp",
    "accounts.zoho.com.cn",
    "accounts.zoho.sa",
    "accounts.zohocloud.ca",
)


def token_url(accounts_url: str) -> str:
    return f"{accounts_url.rstrip('/')}/oauth/v2/token"


def exchange_form(client_id: str, client_secret: SecretStr, code: str) -> dict[str, str]:
    """The form body that turns a Self Client code into a refresh token. Secrets go in
    the body, never the URL."""
    return {
        "grant_type": "authorization_code",
        "client_id": client_id,
        "client_secret": client_secret.get_secret_value(),
        "code": code,
    }


def refresh_form(
    client_id: str, client_secret: SecretStr, refresh_token: SecretStr
) -> dict[str, str]:
    """The form body that turns a refresh token into an access token."""
    return {
        "grant_type": "refresh_token",
        "client_id": client_id,
        "client_secret": client_secret.get_secret_value(),
        "refresh_token": refresh_token.get_secret_value(),
    }
