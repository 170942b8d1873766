"""The DynamoDB adapter for :class:`ordo.jobs.JobTable`.

Item layout (one table, see template.yaml):

==========  ==================  ===================================================
attribute   value               purpose
==========  ==================  ===================================================
pk, sk      ``JOB#<id>``, JOB   the job record
lane, seq   ``LANE#jobs``, N    sparse GSI ``queue``: present only while the job is
                                pending, so position = count of smaller ``seq``
expires_at  epoch seconds       TTL
==========  ==================  ===================================================
"""

from __future__ import annotations

import re
from contextlib import suppress
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from ordo.errors import StaleTransition
from ordo.jobs import Job, JobStatus
from ordo.storage.attributes import from_item, to_item

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

QUEUE_INDEX = "queue"
LANE = "LANE#jobs"


def job_key(job_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"JOB#{job_id}"}, "sk": {"S": "JOB"}}


def _values(values: dict[str, Any]) -> dict[str, Any]:
    return to_item(values)


def _job(item: dict[str, Any]) -> Job:
    plain = from_item(item)
    plain["queue_seq"] = plain.pop("seq", None)
    return Job.model_validate(plain)


def _is_condition_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class DynamoJobTable:
    """Jobs in one DynamoDB table; transitions are single conditional ``UpdateItem`` calls."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def create(self, job: Job) -> None:
        fields = job.model_dump(mode="json", exclude_none=True, exclude={"queue_seq"})
        item = job_key(job.job_id) | _values(fields)
        self._client.put_item(
            TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(pk)"
        )

    def get(self, job_id: str) -> Job | None:
        response = self._client.get_item(
            TableName=self._table, Key=job_key(job_id), ConsistentRead=True
        )
        item = response.get("Item")
        return _job(item) if item else None

    def set_queue_seq(self, job_id: str, seq: int) -> None:
        # If the worker already claimed the job, it has no queue position to record.
        with suppress(StaleTransition):
            self._update(
                job_id,
                "SET #lane = :lane, #seq = :seq",
                "#status = :pending",
                {":lane": LANE, ":seq": seq, ":pending": JobStatus.PENDING.value},
            )

    def count_pending_before(self, seq: int) -> int:
        count = 0
        paginator = self._client.get_paginator("query")
        for page in paginator.paginate(
            TableName=self._table,
            IndexName=QUEUE_INDEX,
            KeyConditionExpression="lane = :lane AND seq < :seq",
            ExpressionAttributeValues=_values({":lane": LANE, ":seq": seq}),
            Select="COUNT",
        ):
            count += page["Count"]
        return count

    def claim(self, job: Job, now: datetime) -> Job:
        return self._update(
            job.job_id,
            "SET #status = :processing, #attempt = :next, #started_at = :now REMOVE #lane, #error",
            "#status = :expected AND #attempt = :attempt AND #status IN (:pending, :processing)",
            {
                ":processing": JobStatus.PROCESSING.value,
                ":pending": JobStatus.PENDING.value,
                ":next": job.attempt + 1,
                ":now": now.isoformat(),
                ":expected": job.status.value,
                ":attempt": job.attempt,
            },
        )

    def finish(
        self, job: Job, status: JobStatus, now: datetime, result: str | None, error: str | None
    ) -> Job:
        outcome = {":result": result} if result is not None else {":error": error}
        field = "result" if result is not None else "error"
        return self._update(
            job.job_id,
            f"SET #status = :status, #finished_at = :now, #{field} = :{field}",
            "#status = :processing AND #attempt = :attempt",
            {
                ":status": status.value,
                ":now": now.isoformat(),
                ":processing": JobStatus.PROCESSING.value,
                ":attempt": job.attempt,
            }
            | outcome,
        )

    def note_failure(self, job: Job, error: str) -> Job:
        return self._update(
            job.job_id,
            "SET #error = :error",
            "#status = :processing AND #attempt = :attempt",
            {":error": error, ":processing": JobStatus.PROCESSING.value, ":attempt": job.attempt},
        )

    def abandon(self, job_id: str, error: str, now: datetime) -> Job:
        return self._update(
            job_id,
            "SET #status = :failed, #finished_at = :now, #error = :error REMOVE #lane",
            "#status IN (:pending, :processing)",
            {
                ":failed": JobStatus.FAILED.value,
                ":now": now.isoformat(),
                ":error": error,
                ":pending": JobStatus.PENDING.value,
                ":processing": JobStatus.PROCESSING.value,
            },
        )

    def _update(self, job_id: str, update: str, condition: str, values: dict[str, Any]) -> Job:
        # Every attribute goes through a placeholder: status, result, error... are reserved words.
        names = {f"#{name}": name for name in re.findall(r"#(\w+)", f"{update} {condition}")}
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key=job_key(job_id),
                UpdateExpression=update,
                ConditionExpression=f"attribute_exists(pk) AND {condition}",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=_values(values),
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if _is_condition_failure(error):
                raise StaleTransition(job_id) from error
            raise
        return _job(response["Attributes"])
