from decimal import Decimal

import pytest

from ordo.storage.attributes import from_item, to_attribute, to_item


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
