import pytest
from pydantic import ValidationError

from ordo.jobs import is_job_id, new_job_id
from ordo.tasks import PAYLOADS, TaskRequest, TaskType


@pytest.mark.parametrize("task_type", list(TaskType))
def test_input_at_the_limit_is_accepted(task_type: TaskType) -> None:
    limit = PAYLOADS[task_type].MAX_CHARS
    assert len(TaskRequest(type=task_type, data="x" * limit).data) == limit


@pytest.mark.parametrize("task_type", list(TaskType))
def test_input_over_the_limit_is_rejected_naming_the_limit(task_type: TaskType) -> None:
    limit = PAYLOADS[task_type].MAX_CHARS
    with pytest.raises(ValidationError, match=f"at most {limit}"):
        TaskRequest(type=task_type, data="x" * (limit + 1))


def test_limit_counts_code_points_not_bytes() -> None:
    limit = PAYLOADS[TaskType.REPEAT_BY_POSITION].MAX_CHARS
    assert TaskRequest(type=TaskType.REPEAT_BY_POSITION, data="ж" * limit)


def test_empty_text_is_valid() -> None:
    assert TaskRequest(type=TaskType.REVERSE, data="").data == ""


@pytest.mark.parametrize(
    "body",
    [
        {"type": "shout", "data": "x"},
        {"type": "reverse"},
        {"data": "x"},
        {"type": "reverse", "data": 5},
        {"type": "reverse", "data": None},
        {"type": "reverse", "data": "x", "extra": 1},
    ],
)
def test_malformed_requests_are_rejected(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        TaskRequest.model_validate(body)


def test_job_ids_are_unguessable_and_well_formed() -> None:
    ids = {new_job_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(is_job_id(job_id) for job_id in ids)
    assert not is_job_id("1")
    assert not is_job_id("../" + "a" * 29)
