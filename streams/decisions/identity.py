"""Normalise and hash identifiers the way ad platforms match CRM conversions.

Meta's customer-information parameters (em, ph, fn, ln, ct, st, zp, country) and
Google's enhanced conversions (E.164 phone): SHA-256 hex of the normalised UTF-8 value.
"""

import hashlib
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import phonenumbers
from babel import Locale

from schemas.conversion import UserData
from zoho.fields import PROFILE_FIELDS

_PHONE_FIELDS = ("phone", "mobile")

# CLDR names groupings, pseudo-locales and exceptionally reserved codes alongside
# countries; none of them is an ISO 3166-1 country an ad platform would match.
_NOT_COUNTRIES = frozenset(
    {"EU", "EZ", "UN", "QO", "XA", "XB", "ZZ", "AC", "CP", "DG", "EA", "IC", "TA"}
)
_TERRITORIES = {str(code): str(name) for code, name in Locale("en").territories.items()}
_COUNTRY_CODES = frozenset(
    code
    for code in _TERRITORIES
    if len(code) == 2 and code.isalpha() and code not in _NOT_COUNTRIES
)
# Spellings CRM users type that CLDR's English names do not have.
_COUNTRY_ALIASES = {
    "usa": "US",
    "u.s.a.": "US",
    "u.s.": "US",
    "united states of america": "US",
    "america": "US",
    "uk": "GB",
    "u.k.": "GB",
    "great britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northern ireland": "GB",
    "uae": "AE",
    "holland": "NL",
    "czech republic": "CZ",
    "ivory coast": "CI",
}
_COUNTRY_BY_NAME: Mapping[str, str] = MappingProxyType(
    _COUNTRY_ALIASES
    | {" ".join(_TERRITORIES[code].casefold().split()): code for code in _COUNTRY_CODES}
)


@dataclass(frozen=True)
class Identity:
    user_data: UserData
    profile: dict[str, str]
    # Fields present but not normalisable: counted by the caller, never hashed raw.
    unusable: tuple[str, ...]


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def build_identity(
    fields: Mapping[str, str], default_country: str | None, pass_through: Iterable[str]
) -> Identity:
    """Hashed identifiers and plain pass-through fields from a record's profile."""
    values = {name: value.strip() for name, value in fields.items() if value.strip()}
    plain = frozenset(pass_through)
    hashed: dict[str, list[str]] = {}
    profile: dict[str, str] = {}
    unusable: list[str] = []

    def add(key: str, normalised: str) -> None:
        hashed.setdefault(key, []).append(sha256_hex(normalised))

    if "email" in values:
        email = normalise_email(values["email"])
        if email is None:
            unusable.append("email")
        else:
            add("em", email)

    seen_numbers: set[str] = set()
    for name in _PHONE_FIELDS:
        if name not in values:
            continue
        e164 = normalise_phone(values[name], default_country)
        if e164 is None:
            unusable.append(name)
        elif e164 not in seen_numbers:
            seen_numbers.add(e164)
            add("ph", e164.removeprefix("+"))
            add("ph_e164", e164)

    country = normalise_country(values["country"]) if "country" in values else None
    region = country or (default_country.strip().lower() if default_country else None)

    for name in PROFILE_FIELDS:
        if name not in values:
            continue
        value = values[name]
        if name in plain:
            profile[name] = value
            continue
        key_and_value = _hashed_profile_field(name, value, country, region)
        if key_and_value is None:
            continue
        key, normalised = key_and_value
        if normalised:
            add(key, normalised)
        else:
            unusable.append(name)

    return Identity(
        user_data=UserData.model_validate(hashed),
        profile=profile,
        unusable=tuple(unusable),
    )


def _hashed_profile_field(
    name: str, value: str, country: str | None, region: str | None
) -> tuple[str, str | None] | None:
    """(ad-platform key, normalised value or None when unusable); None: no key exists."""
    if name == "first_name":
        return "fn", _letters(value) or None
    if name == "last_name":
        return "ln", _letters(value) or None
    if name == "city":
        return "ct", _letters(value) or None
    if name == "state":
        return "st", _letters(value) or None
    if name == "zip_code":
        return "zp", normalise_zip(value, region)
    if name == "country":
        return "country", country
    return None  # street and title: no hashed key


def normalise_email(text: str) -> str | None:
    """Trimmed and lower-cased; None unless it looks like an address."""
    email = text.strip().lower()
    local, at, domain = email.partition("@")
    if (
        not at
        or not local
        or "@" in domain
        or "." not in domain.strip(".")
        or any(char.isspace() for char in email)
    ):
        return None
    return email


def normalise_phone(text: str, default_country: str | None) -> str | None:
    """E.164 ("+14155550123"), reading numbers without a country code as default_country."""
    region = default_country.strip().upper() if default_country else None
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not (phonenumbers.is_possible_number(number) and phonenumbers.is_valid_number(number)):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_country(text: str) -> str | None:
    """ISO 3166-1 alpha-2, lower case, from a code ("US") or an English name ("Germany")."""
    cleaned = " ".join(text.casefold().split())
    if len(cleaned) == 2 and cleaned.upper() in _COUNTRY_CODES:
        return cleaned
    code = _COUNTRY_BY_NAME.get(cleaned)
    return code.lower() if code else None


def normalise_zip(text: str, region: str | None) -> str | None:
    """Lower case without spaces or dashes; in the US, the five-digit ZIP only."""
    cleaned = "".join(char for char in text.lower() if not char.isspace() and char != "-")
    if region == "us":
        cleaned = cleaned[:5]
        if len(cleaned) != 5 or any(char not in "0123456789" for char in cleaned):
            return None
    return cleaned or None


def _letters(text: str) -> str:
    """Lower case, letters only (any script); NFC first so "é" hashes one way."""
    normalised = unicodedata.normalize("NFC", text.strip().lower())
    return "".join(char for char in normalised if unicodedata.category(char)[0] in "LM")
