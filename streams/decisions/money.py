"""Amounts: read the text Zoho sends, and convert it into the target currency."""

import functools
import re
import unicodedata
from decimal import MAX_EMAX, MIN_EMIN, ROUND_HALF_UP, Context, Decimal, InvalidOperation

from babel.numbers import get_currency_precision

from schemas.source import ISO_4217
from zoho.fields import cached_for_labels

# An optional currency marker on either side of an optionally signed number.
_SHAPE = re.compile(
    r"(?P<before>[^\s0-9.,+-]*)\s*(?P<sign>[+-]?)\s*(?P<inner>[^\s0-9.,+-]*)\s*"
    r"(?P<number>[0-9.,]+)\s*(?P<after>[^\s0-9.,+-]*)"
)
# Comma only ever groups thousands: "1,5" is ambiguous (1.5 in much of Europe), so refused.
_PLAIN = re.compile(r"[0-9]+(\.[0-9]+)?|\.[0-9]+")
_GROUPED = re.compile(r"[0-9]{1,3}(,[0-9]{3})+(\.[0-9]+)?")
_EXPONENT = re.compile(r"[+-]?[0-9.,]*[0-9][eE][+-]?[0-9]+")
# Zoho's currency fields hold at most 16 digits; a longer number is a corrupted value,
# and one of thousands of digits would cost every later step time and memory.
MAX_DIGITS = 16


class InvalidAmount(ValueError):
    """The text is not an amount. The message reads after "is": "not a number: 'abc'"."""


def parse_amount(text: str) -> Decimal | None:
    """The amount in `text`, or None when it is blank (a conversion without a value)."""
    stripped = text.strip()
    if not stripped:
        return None
    if _PLAIN.fullmatch(stripped) or _GROUPED.fullmatch(stripped):
        # The common cases, "1000", "12500.5" or "1,000.10": what the checks below would
        # also accept.
        return _bounded(Decimal(stripped.replace(",", "")), text)
    if _EXPONENT.fullmatch(stripped):
        # Zoho never sends exponents; accepting them would hide a corrupted value.
        raise InvalidAmount(f"not a number: {text!r} (exponent notation is not accepted)")
    shape = _SHAPE.fullmatch(stripped)
    if shape is None:
        raise InvalidAmount(f"not a number: {text!r}")
    markers = [shape[part] for part in ("before", "inner", "after") if shape[part]]
    if len(markers) > 1:
        raise InvalidAmount(f"not a number: {text!r} (more than one currency marker)")
    if markers and not _is_currency_marker(markers[0]):
        raise InvalidAmount(f"not a number: {text!r} (unknown currency {markers[0]!r})")
    if shape["sign"] == "-":
        raise InvalidAmount(f"negative: {text!r} (a conversion value is never negative)")
    number = shape["number"]
    if _PLAIN.fullmatch(number) or _GROUPED.fullmatch(number):
        return _bounded(Decimal(number.replace(",", "")), text)
    if number.count(".") > 1:
        raise InvalidAmount(f"not a number: {text!r} (more than one decimal point)")
    if "," in number:
        raise InvalidAmount(f"not a number: {text!r} (misplaced thousands separator)")
    raise InvalidAmount(f"not a number: {text!r}")


def _bounded(amount: Decimal, text: str) -> Decimal:
    if len(text) <= MAX_DIGITS:
        return amount  # fewer characters than the limit's digits
    digits = len(amount.as_tuple().digits)
    if digits > MAX_DIGITS:
        shown = text if len(text) <= 40 else f"{text[:20]}…{text[-8:]}"
        raise InvalidAmount(
            f"too long: {shown!r} ({digits} digits; a Zoho currency field holds at most"
            f" {MAX_DIGITS})"
        )
    return amount


@cached_for_labels
def _is_currency_marker(marker: str) -> bool:
    """An ISO 4217 code, or a symbol such as "$", "€", "US$" or "R$"."""
    if marker.upper() in ISO_4217:
        return True
    symbols = [char for char in marker if unicodedata.category(char) == "Sc"]
    letters = [char for char in marker if "A" <= char.upper() <= "Z"]
    return bool(symbols) and len(symbols) + len(letters) == len(marker) and len(letters) <= 3


@functools.lru_cache(maxsize=512)
def minor_units(currency: str) -> int:
    """Digits after the decimal point in `currency` (JPY 0, USD 2, KWD 3), per CLDR."""
    code = currency.strip().upper()
    if code not in ISO_4217:
        # babel answers 2 for any unknown code; a typo must not pass as a currency.
        raise ValueError(f"{currency!r} is not an ISO 4217 currency code")
    return int(get_currency_precision(code))


def convert(amount: Decimal, exchange_rate: Decimal, currency: str) -> Decimal:
    """amount × exchange_rate, rounded half-up once, to the currency's minor units."""
    if not (amount.is_finite() and exchange_rate.is_finite()):
        raise ValueError(f"cannot convert {amount} at rate {exchange_rate}")
    places = minor_units(currency)
    # Enough digits that the product is exact and the quantized result fits, so the
    # only rounding is the quantize below.
    digits = len(amount.as_tuple().digits) + len(exchange_rate.as_tuple().digits)
    integer_digits = max(amount.adjusted() + exchange_rate.adjusted() + 2, 1)
    context = Context(
        prec=max(digits, integer_digits + places) + 1,
        rounding=ROUND_HALF_UP,
        Emax=MAX_EMAX,
        Emin=MIN_EMIN,
        traps=[InvalidOperation],
    )
    product = context.multiply(amount, exchange_rate)
    return product.quantize(Decimal(1).scaleb(-places), context=context)
