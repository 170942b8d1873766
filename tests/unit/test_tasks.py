import pytest

from ordo.tasks import PAYLOADS, TRANSFORMS, TaskType, repeat_by_position, reverse, swap_pairs


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", ""), ("a", "a"), ("example", "elpmaxe"), ("кот", "ток"), ("a😀b", "b😀a")],
)
def test_reverse(text: str, expected: str) -> None:
    assert reverse(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ""),
        ("a", "a"),
        ("ab", "ba"),
        ("abcdef", "badcfe"),
        ("cat", "act"),
        ("кот", "окт"),
        ("example", "xemalpe"),
        ("😀a", "a😀"),
    ],
)
def test_swap_pairs(text: str, expected: str) -> None:
    assert swap_pairs(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", ""), ("a", "a"), ("abc", "abbccc"), ("prime", "prriiimmmmeeeee"), ("ёж", "ёжж")],
)
def test_repeat_by_position(text: str, expected: str) -> None:
    assert repeat_by_position(text) == expected


def test_delays_are_2_5_and_7_seconds() -> None:
    assert {t: PAYLOADS[t].DELAY_SECONDS for t in TaskType} == {
        TaskType.REVERSE: 2,
        TaskType.SWAP_PAIRS: 5,
        TaskType.REPEAT_BY_POSITION: 7,
    }


@pytest.mark.parametrize("task_type", list(TaskType))
def test_worst_case_input_and_result_fit_in_one_dynamodb_item(task_type: TaskType) -> None:
    # Given the longest accepted input of 4-byte code points
    text = "😀" * PAYLOADS[task_type].MAX_CHARS
    # When the task runs
    result = TRANSFORMS[task_type](text)
    # Then input plus result leave room for the rest of the item under DynamoDB's 400 KB
    assert len(text.encode()) + len(result.encode()) < 380_000
