"""``python -m infra.local --parameter-overrides``: the forms ``sam deploy`` takes."""

from __future__ import annotations

import pytest

from infra.local.__main__ import parameter_overrides


@pytest.mark.parametrize(
    "arguments",
    [
        ["ApiThrottlingRateLimit=7", "ApiThrottlingBurstLimit=3"],
        ["ApiThrottlingRateLimit=7 ApiThrottlingBurstLimit=3"],  # one quoted string, as SAM
        [
            "ParameterKey=ApiThrottlingRateLimit,ParameterValue=7 "
            "ParameterKey=ApiThrottlingBurstLimit,ParameterValue=3"
        ],
        ["ParameterKey=ApiThrottlingRateLimit,ParameterValue=7", "ApiThrottlingBurstLimit=3"],
    ],
)
def test_every_form_sam_takes_gives_the_same_parameters(arguments: list[str]) -> None:
    assert parameter_overrides(arguments) == {
        "ApiThrottlingRateLimit": "7",
        "ApiThrottlingBurstLimit": "3",
    }


def test_a_quoted_value_keeps_its_spaces_and_equals_signs() -> None:
    assert parameter_overrides(["Note='a b=c' Empty="]) == {"Note": "a b=c", "Empty": ""}


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        (["ApiThrottlingRateLimit"], "'ApiThrottlingRateLimit' is not KEY=VALUE"),
        (["=7"], "'=7' is not KEY=VALUE"),
        (["A='unclosed"], "No closing quotation"),
    ],
)
def test_a_malformed_entry_is_named(arguments: list[str], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parameter_overrides(arguments)
