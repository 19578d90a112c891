"""The Zoho code exchange at the source URL, without I/O: what Zoho's answer means for
the operator, in words that say what to do next."""

from dataclasses import dataclass

from pydantic import SecretStr

from schemas.source import SourceConfig
from zoho.accounts import DATA_CENTRES, SCOPE, token_url
from zoho.answers import access_token, client_refused, is_throttled, json_object


def missing_client(source: SourceConfig) -> list[str]:
    """The client settings the exchange needs but the source does not have."""
    missing = [] if source.client_id else ["client_id"]
    if not source.client_secret.get_secret_value():
        missing.append("client_secret")
    return missing


@dataclass(frozen=True)
class Exchanged:
    refresh_token: SecretStr
    api_domain: str


@dataclass(frozen=True)
class ExchangeFailed:
    """What went wrong, in words for the operator, with the HTTP status that fits."""

    status: int
    message: str
    token_url: str
    zoho_error: str | None = None


def not_configured(source: SourceConfig) -> ExchangeFailed:
    missing = " and ".join(missing_client(source))
    return ExchangeFailed(
        409,
        f"Source {source.id} has no {missing} yet. Copy them from the Self Client in the "
        "Zoho API console into the source's configuration, restart the ingress, then "
        "generate a new code and open this link again.",
        token_url(source.accounts_url),
    )


def unreachable(url: str, timed_out: bool) -> ExchangeFailed:
    if timed_out:
        return ExchangeFailed(
            504,
            f"Zoho did not answer in time at {url}. The code may still be unused: if it is "
            "less than a few minutes old, open this link again; otherwise generate a new one.",
            url,
        )
    return ExchangeFailed(
        502,
        f"Zoho could not be reached at {url}. Check the source's accounts_url and this "
        "server's network access to Zoho, then try again with a new code.",
        url,
    )


def interpret_exchange(status: int, body: bytes, url: str) -> Exchanged | ExchangeFailed:
    """Zoho's answer to the code exchange: the refresh token, or why there is none."""
    answer = json_object(body)
    if answer is None:
        return ExchangeFailed(
            502,
            f"Zoho's accounts server at {url} did not give a token answer (HTTP {status}). "
            f"Check that the source's accounts_url is a Zoho accounts URL "
            f"({', '.join(DATA_CENTRES)}).",
            url,
        )
    if access_token(answer):
        refresh_token = answer.get("refresh_token")
        if not isinstance(refresh_token, str) or not refresh_token:
            return ExchangeFailed(
                502,
                f"Zoho at {url} accepted the code but gave no refresh token. Generate the "
                f"code from a Self Client with scope {SCOPE} and try again.",
                url,
            )
        api_domain = answer.get("api_domain")
        return Exchanged(
            SecretStr(refresh_token), api_domain if isinstance(api_domain, str) else ""
        )
    error = answer.get("error")
    return _refused(str(error) if error is not None else f"HTTP {status} without a token", url)


def _refused(error: str, url: str) -> ExchangeFailed:
    if error == "invalid_code":
        message = (
            "The code has expired or was already used: generate a new one in the Zoho API "
            "console and open this link within a few minutes. (A code is valid for 3 to 10 "
            f"minutes and works once. It was sent to {url}; a code from another data centre "
            "is refused the same way. If this page showed a refresh token a moment ago and was "
            "reloaded, that token is still valid.)"
        )
        return ExchangeFailed(400, message, url, error)
    client_error = client_refused(error, url)
    if client_error:
        remedy = " Restart the ingress after fixing it, and use a new code."
        return ExchangeFailed(502, client_error + remedy, url, error)
    if is_throttled(error):
        message = (
            f"Zoho at {url} is limiting token requests for this client. Wait ten minutes, "
            "then generate a new code and try again."
        )
        return ExchangeFailed(503, message, url, error)
    message = f"Zoho at {url} refused the code exchange with the error {error!r}."
    return ExchangeFailed(502, message, url, error)
