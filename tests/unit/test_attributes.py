from decimal import Decimal

import pytest

from ordo.storage.attributes import (
    from_item,
    from_json_attribute,
    to_attribute,
    to_item,
    to_json_attribute,
)


def test_round_trip_of_every_supported_type() -> None:
    values = {
        "s": "ж😀",
        "empty": "",
        "n": 18849496460467696128,
        "neg": -3,
        "d": Decimal("19.99"),
        "b": False,
        "none": None,
        "m": {"nested": [1, "x", {"deep": True}]},
    }
    assert from_item(to_item(values)) == values


def test_wire_format_matches_dynamodb() -> None:
    assert to_attribute(12) == {"N": "12"}
    assert to_attribute(Decimal("0.10")) == {"N": "0.10"}
    assert to_attribute(["a"]) == {"L": [{"S": "a"}]}


def test_decimals_stay_exact() -> None:
    assert from_item(to_item({"price": Decimal("19.99")}))["price"] == Decimal("19.99")


def test_floats_are_refused() -> None:
    with pytest.raises(TypeError):
        to_attribute(0.1)


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ('{"a":[1,"x"]}', {"M": {"a": {"L": [{"N": "1"}, {"S": "x"}]}}}),
        (
            '[19.99,null,false,""]',
            {"L": [{"N": "19.99"}, {"NULL": True}, {"BOOL": False}, {"S": ""}]},
        ),
        ("reversed text", {"S": "reversed text"}),
        ("42", {"S": "42"}),  # JSON, but not a document
        ('{"a": 1}', {"S": '{"a": 1}'}),  # spacing DynamoDB would lose
        ('{"a":1.50}', {"S": '{"a":1.50}'}),  # DynamoDB answers 1.5
        ('{"a":1E+2}', {"S": '{"a":1E+2}'}),
        ('{"a":NaN}', {"S": '{"a":NaN}'}),
        ('{"":1}', {"S": '{"":1}'}),  # an empty map key
        ('{"a":1,"a":2}', {"S": '{"a":1,"a":2}'}),
        ('["\\ud800"]', {"S": '["\\ud800"]'}),
        ("[" * 1500, {"S": "[" * 1500}),
    ],
)
def test_json_text_is_stored_as_its_value_only_when_it_reads_back_exactly(
    text: str, stored: dict[str, object]
) -> None:
    assert to_json_attribute(text) == stored
    assert from_json_attribute(stored) == text


def test_a_stored_string_reads_as_it_is_whatever_it_holds() -> None:
    """How every payload and result was stored before: never parsed, never reformatted."""
    for old in ('{"a": 1.0}', "[1, 2]", "plain"):
        assert from_json_attribute({"S": old}) == old


# More significant digits than a float holds (about 17), within DynamoDB's 38.
THIRTY_DIGITS = "1.23456789012345678901234567891"


@pytest.mark.parametrize(
    "number",
    [
        THIRTY_DIGITS,
        "-98765432109876543210.9876543219",
        "0.000001234567890123456789012345678901",
        "12345678901234567890123456789012345678",
    ],
)
def test_a_number_of_up_to_38_digits_is_stored_as_a_number_and_reads_back_exactly(
    number: str,
) -> None:
    text = f'{{"amount":{number},"lines":[{number}]}}'
    stored = to_json_attribute(text)
    assert stored == {"M": {"amount": {"N": number}, "lines": {"L": [{"N": number}]}}}
    assert from_json_attribute(stored) == text


def test_a_number_reads_back_with_its_own_digits_never_through_a_float() -> None:
    assert from_json_attribute({"L": [{"N": THIRTY_DIGITS}, {"N": "-0.1"}, {"N": "7"}]}) == (
        f"[{THIRTY_DIGITS},-0.1,7]"
    )
