from decimal import Decimal

import pytest

from streams.decisions.money import InvalidAmount, convert, minor_units, parse_amount


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", None),
        ("   ", None),
        ("0", Decimal("0")),
        (" 99 ", Decimal("99")),
        ("1,234.50", Decimal("1234.50")),
        ("1,234,567", Decimal("1234567")),
        ("$1,000.00", Decimal("1000.00")),
        ("€ 12", Decimal("12")),
        ("12 €", Decimal("12")),
        ("USD 5", Decimal("5")),
        ("5 usd", Decimal("5")),
        ("US$ 7.25", Decimal("7.25")),
        ("+3.5", Decimal("3.5")),
        (".5", Decimal("0.5")),
        ("\u00a01234.5\u00a0", Decimal("1234.5")),
    ],
)
def test_parse_amount(text: str, expected: Decimal | None) -> None:
    assert parse_amount(text) == expected


def test_parse_amount_keeps_the_sent_precision() -> None:
    assert str(parse_amount("1,234.50")) == "1234.50"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("abc", "not a number: 'abc'"),
        ("1.2.3", "not a number: '1.2.3' (more than one decimal point)"),
        ("NaN", "not a number: 'NaN'"),
        ("Infinity", "not a number: 'Infinity'"),
        ("-Infinity", "not a number: '-Infinity'"),
        ("1e5", "not a number: '1e5' (exponent notation is not accepted)"),
        ("2.5E-3", "not a number: '2.5E-3' (exponent notation is not accepted)"),
        ("-3.5", "negative: '-3.5' (a conversion value is never negative)"),
        ("-$3.5", "negative: '-$3.5' (a conversion value is never negative)"),
        ("$-3.5", "negative: '$-3.5' (a conversion value is never negative)"),
        ("1,5", "not a number: '1,5' (misplaced thousands separator)"),
        ("1,2345.00", "not a number: '1,2345.00' (misplaced thousands separator)"),
        ("ABC 5", "not a number: 'ABC 5' (unknown currency 'ABC')"),
        ("$5 USD", "not a number: '$5 USD' (more than one currency marker)"),
        ("5.", "not a number: '5.'"),
        ("12 34", "not a number: '12 34'"),
        ("١٢٣", "not a number: '١٢٣'"),
    ],
)
def test_parse_amount_rejects(text: str, message: str) -> None:
    with pytest.raises(InvalidAmount) as raised:
        parse_amount(text)
    assert str(raised.value) == message


def test_parse_amount_accepts_sixteen_digits() -> None:
    assert parse_amount("1234567890123.456") == Decimal("1234567890123.456")


def test_parse_amount_refuses_more_digits_than_zoho_holds() -> None:
    with pytest.raises(InvalidAmount, match=r"too long: '10{19}…0{8}' \(5001 digits") as error:
        parse_amount("1" + "0" * 5000)
    assert len(str(error.value)) < 120
    with pytest.raises(InvalidAmount, match="17 digits"):
        parse_amount("12,345,678,901,234.567")


def test_invalid_amount_is_a_value_error() -> None:
    assert issubclass(InvalidAmount, ValueError)


@pytest.mark.parametrize(
    ("currency", "places"),
    [("JPY", 0), ("USD", 2), ("EUR", 2), ("KWD", 3), ("BHD", 3), ("usd", 2)],
)
def test_minor_units(currency: str, places: int) -> None:
    assert minor_units(currency) == places


def test_minor_units_refuses_an_unknown_code() -> None:
    with pytest.raises(ValueError, match="'ABC' is not an ISO 4217 currency code"):
        minor_units("ABC")


@pytest.mark.parametrize(
    ("amount", "rate", "currency", "expected"),
    [
        ("1234.50", "1", "JPY", "1235"),
        ("1234.49", "1", "JPY", "1234"),
        ("2.5", "1", "JPY", "3"),
        ("3.5", "1", "JPY", "4"),
        ("0.125", "1", "USD", "0.13"),
        ("0.124", "1", "USD", "0.12"),
        ("1.2345", "1", "KWD", "1.235"),
        ("1.2344", "1", "KWD", "1.234"),
        ("100", "0.30765", "KWD", "30.765"),
        ("0", "1.1", "USD", "0.00"),
        ("10", "1.1", "USD", "11.00"),
        ("1000.00", "0.92", "EUR", "920.00"),
        ("1", "149.505", "JPY", "150"),
        # Rounded once: 0.1049 is 0.10, not 0.105 rounded again to 0.11.
        ("0.1049", "1", "USD", "0.10"),
        # Exact however many digits the inputs carry.
        ("123456789012345678901234567890.125", "1", "USD", "123456789012345678901234567890.13"),
        ("0.000000000000000000000000000001", "1000000000000000000000000000000", "USD", "1.00"),
        (
            "99999999999999999999999999999",
            "99999999999999999999999999999",
            "JPY",
            "9999999999999999999999999999800000000000000000000000000001",
        ),
    ],
)
def test_convert(amount: str, rate: str, currency: str, expected: str) -> None:
    assert str(convert(Decimal(amount), Decimal(rate), currency)) == expected


def test_convert_ignores_the_global_context() -> None:
    import decimal

    with decimal.localcontext() as context:
        context.prec = 3
        context.rounding = decimal.ROUND_DOWN
        assert str(convert(Decimal("1234.565"), Decimal("1"), "USD")) == "1234.57"


def test_convert_refuses_non_finite() -> None:
    with pytest.raises(ValueError, match="cannot convert"):
        convert(Decimal("NaN"), Decimal("1"), "USD")
