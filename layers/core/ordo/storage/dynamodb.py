"""The DynamoDB adapter for :class:`ordo.jobs.JobTable`.

Item layout (one table, see template.yaml):

==========  ==================  ===================================================
attribute   value               purpose
==========  ==================  ===================================================
pk, sk      ``JOB#<id>``, JOB   the job record
lane, seq   ``LANE#jobs``, N    sparse GSI ``queue``: present only while the job is
                                pending, so position = count of smaller ``seq``
expires_at  epoch seconds       TTL
pk, sk      ``QUOTA#<owner>``,  ``pending``: the owner's pending jobs, changed in the
            PENDING             same transaction as every move into or out of pending
==========  ==================  ===================================================
"""

from __future__ import annotations

import re
from contextlib import suppress
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from ordo.errors import StaleTransition
from ordo.jobs import Job, JobStatus, PendingQuotaExceeded
from ordo.storage.attributes import from_item, to_item
from ordo.storage.transactions import cancellation_codes, is_condition_failure, transact_write

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

QUEUE_INDEX = "queue"
LANE = "LANE#jobs"


def job_key(job_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"JOB#{job_id}"}, "sk": {"S": "JOB"}}


def quota_key(owner: str) -> dict[str, Any]:
    return {"pk": {"S": f"QUOTA#{owner}"}, "sk": {"S": "PENDING"}}


def _values(values: dict[str, Any]) -> dict[str, Any]:
    return to_item(values)


def _job(item: dict[str, Any]) -> Job:
    plain = from_item(item)
    plain["queue_seq"] = plain.pop("seq", None)
    return Job.model_validate(plain)


def _cancelled_by_condition(error: ClientError) -> list[bool]:
    """Per action of a cancelled transaction: did its condition fail?"""
    return [code == "ConditionalCheckFailed" for code in cancellation_codes(error)]


def _placeholders(*expressions: str) -> dict[str, str]:
    # Every attribute goes through a placeholder: status, result, error... are reserved words.
    return {f"#{name}": name for name in re.findall(r"#(\w+)", " ".join(expressions))}


class DynamoJobTable:
    """Jobs in one DynamoDB table; transitions are single conditional ``UpdateItem`` calls."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def create(self, job: Job, max_pending: int) -> None:
        fields = job.model_dump(mode="json", exclude_none=True, exclude={"queue_seq"})
        item = job_key(job.job_id) | _values(fields)
        actions: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": item,
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {
                "Update": {
                    "TableName": self._table,
                    "Key": quota_key(job.owner),
                    "UpdateExpression": "ADD pending :one",
                    "ConditionExpression": "attribute_not_exists(pending) OR pending < :max",
                    "ExpressionAttributeValues": _values({":one": 1, ":max": max_pending}),
                }
            },
        ]
        try:
            transact_write(self._client, actions)
        except ClientError as error:
            failed = _cancelled_by_condition(error)
            if len(failed) == 2 and failed[1]:
                raise PendingQuotaExceeded(max_pending) from error
            if len(failed) == 2 and failed[0]:
                raise StaleTransition(job.job_id) from error
            raise

    def pending_count(self, owner: str) -> int:
        item = self._client.get_item(
            TableName=self._table, Key=quota_key(owner), ConsistentRead=True
        ).get("Item")
        return int(item["pending"]["N"]) if item else 0

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
        update = (
            "SET #status = :processing, #attempt = :next, #started_at = :now, #updated_at = :now"
            " REMOVE #lane, #error"
        )
        condition = "#status = :expected AND #attempt = :attempt"
        values = {
            ":processing": JobStatus.PROCESSING.value,
            ":next": job.attempt + 1,
            ":now": now.isoformat(),
            ":expected": job.status.value,
            ":attempt": job.attempt,
        }
        if job.status is JobStatus.PROCESSING:  # a retry: it left pending (and the quota) before
            return self._update(job.job_id, update, condition, values)
        if job.status is not JobStatus.PENDING:
            raise StaleTransition(job.job_id)
        self._leave_pending(job, update, condition, values)
        return job.model_copy(
            update={
                "status": JobStatus.PROCESSING,
                "attempt": job.attempt + 1,
                "started_at": now,
                "updated_at": now,
                "error": None,
                "queue_seq": None,
            }
        )

    def _leave_pending(self, job: Job, update: str, condition: str, values: dict[str, Any]) -> None:
        """Move a pending job on and take it off its owner's quota, in one transaction."""
        actions: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": job_key(job.job_id),
                    "UpdateExpression": update,
                    "ConditionExpression": f"attribute_exists(pk) AND {condition}",
                    "ExpressionAttributeNames": _placeholders(update, condition),
                    "ExpressionAttributeValues": _values(values),
                }
            },
            {
                "Update": {
                    "TableName": self._table,
                    "Key": quota_key(job.owner),
                    "UpdateExpression": "ADD pending :minus_one",
                    "ExpressionAttributeValues": _values({":minus_one": -1}),
                }
            },
        ]
        try:
            transact_write(self._client, actions)
        except ClientError as error:
            if any(_cancelled_by_condition(error)):
                raise StaleTransition(job.job_id) from error
            raise

    def finish(
        self, job: Job, status: JobStatus, now: datetime, result: str | None, error: str | None
    ) -> Job:
        outcome = {":result": result} if result is not None else {":error": error}
        field = "result" if result is not None else "error"
        done = ", #progress = :hundred" if status is JobStatus.COMPLETED else ""
        return self._update(
            job.job_id,
            f"SET #status = :status, #finished_at = :now, #updated_at = :now, #{field} = :{field}"
            + done,
            "#status = :processing AND #attempt = :attempt",
            {
                ":status": status.value,
                ":now": now.isoformat(),
                ":processing": JobStatus.PROCESSING.value,
                ":attempt": job.attempt,
            }
            | outcome
            | ({":hundred": 100} if done else {}),
        )

    def set_progress(self, job: Job, progress: int, now: datetime) -> Job:
        return self._update(
            job.job_id,
            "SET #progress = :progress, #updated_at = :now",
            "#status = :processing AND #attempt = :attempt AND #progress < :progress",
            {
                ":progress": progress,
                ":now": now.isoformat(),
                ":processing": JobStatus.PROCESSING.value,
                ":attempt": job.attempt,
            },
        )

    def note_failure(self, job: Job, error: str) -> Job:
        return self._update(
            job.job_id,
            "SET #error = :error",
            "#status = :processing AND #attempt = :attempt",
            {":error": error, ":processing": JobStatus.PROCESSING.value, ":attempt": job.attempt},
        )

    def abandon(self, job_id: str, error: str, now: datetime) -> Job:
        update = (
            "SET #status = :failed, #finished_at = :now, #updated_at = :now, #error = :error"
            " REMOVE #lane"
        )
        for _ in range(3):  # the status may move between the read and the write; read again
            job = self.get(job_id)
            if job is None or job.status.is_final:
                raise StaleTransition(job_id)
            values = {
                ":failed": JobStatus.FAILED.value,
                ":now": now.isoformat(),
                ":error": error,
                ":seen": job.status.value,
            }
            try:
                if job.status is JobStatus.PROCESSING:
                    return self._update(job_id, update, "#status = :seen", values)
                self._leave_pending(job, update, "#status = :seen", values)
            except StaleTransition:
                continue
            return job.model_copy(
                update={
                    "status": JobStatus.FAILED,
                    "finished_at": now,
                    "updated_at": now,
                    "error": error,
                    "queue_seq": None,
                }
            )
        raise StaleTransition(job_id)

    def _update(self, job_id: str, update: str, condition: str, values: dict[str, Any]) -> Job:
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key=job_key(job_id),
                UpdateExpression=update,
                ConditionExpression=f"attribute_exists(pk) AND {condition}",
                ExpressionAttributeNames=_placeholders(update, condition),
                ExpressionAttributeValues=_values(values),
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if is_condition_failure(error):
                raise StaleTransition(job_id) from error
            raise
        return _job(response["Attributes"])
