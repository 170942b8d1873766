"""The DynamoDB adapter for :class:`ordo.jobs.JobTable`.

Item layout (one table, see template.yaml):

==========  ==================  ===================================================
attribute   value               purpose
==========  ==================  ===================================================
pk, sk      ``JOB#<id>``, JOB   the job record
lane, seq   ``LANE#jobs``, N    sparse GSI ``queue``: present only while the job is
                                pending, so position = count of smaller ``seq``
status_pk,  ``JOBS#<status>``,  GSI ``jobs_by_status`` (the job without its payload and
status_sk   ``<time>#<id>``     result): every owner's jobs by the time they entered
                                their status, for the admin views and the reconciler
gsi1pk,     ``JOBS#<owner>``,   GSI ``gsi1`` (keys only): one owner's jobs by
gsi1sk      ``<created>#<id>``  acceptance, for ``GET /jobs``. Set when the job is
                                created; jobs created before it existed lack it
expires_at  epoch seconds       TTL, set when the job finishes
data        a map, or S         the payload (JSON text in the domain) as the JSON value it
                                holds (``attributes.to_json_attribute``); S in older items
result      a map or list, or   a kind's result that it declares JSON (``result_is_json``)
            S                   is stored as the payload is; any other result (text, even
                                text that looks like JSON) and older items' results: S
pk, sk      ``QUOTA#<owner>``,  ``pending``: the owner's pending jobs, changed in the
            PENDING             same transaction as every move into or out of pending
pk, sk      ``ACTIVE#<kind>``,  ``job_id``: the one active job of a singleton kind
            JOB                 (fetch), written in the same transaction as that job,
                                and replaced, never deleted, once the job has ended
==========  ==================  ===================================================
"""

from __future__ import annotations

import json
import re
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from ordo.errors import StaleTransition
from ordo.jobs import (
    Job,
    JobPage,
    JobStatus,
    JobSummary,
    NotRetryable,
    OwnerJobPage,
    PendingQuotaExceeded,
    SingletonMoved,
)
from ordo.storage.attributes import (
    from_item,
    from_json_attribute,
    to_attribute,
    to_json_attribute,
)
from ordo.storage.pages import GSI1, DynamoTable, Index, query_count
from ordo.storage.transactions import cancellation_codes, is_condition_failure, transact_write

QUEUE_INDEX = "queue"
STATUS_INDEX = Index("jobs_by_status", "status_pk", "status_sk", keys_only=False)
OWNER_INDEX = GSI1
LANE = "LANE#jobs"
# A job's payload and result, which may be stored as the JSON value they hold (never other
# text: a text result stored as a map could come back reordered).
JSON_FIELDS = ("data", "result")


def job_key(job_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"JOB#{job_id}"}, "sk": {"S": "JOB"}}


def quota_key(owner: str) -> dict[str, Any]:
    return {"pk": {"S": f"QUOTA#{owner}"}, "sk": {"S": "PENDING"}}


def singleton_key(kind: str) -> dict[str, Any]:
    return {"pk": {"S": f"ACTIVE#{kind}"}, "sk": {"S": "JOB"}}


@dataclass(frozen=True)
class _Json:
    """A value to store with :func:`to_json_attribute`."""

    text: str


def _values(values: dict[str, Any]) -> dict[str, Any]:
    return {
        name: to_json_attribute(value.text) if isinstance(value, _Json) else to_attribute(value)
        for name, value in values.items()
    }


def _moment(moment: datetime) -> str:
    """A fixed-width UTC time, so that index keys sort as times do."""
    return f"{moment.astimezone(UTC):%Y-%m-%dT%H:%M:%S.%fZ}"


def _status_keys(status: JobStatus, since: datetime, job_id: str) -> dict[str, Any]:
    return {":status_pk": f"JOBS#{status.value}", ":status_sk": f"{_moment(since)}#{job_id}"}


_SET_STATUS_KEYS = "#status_pk = :status_pk, #status_sk = :status_sk"


def _claim_update(attempt: int, now: datetime, job_id: str) -> tuple[str, dict[str, Any]]:
    """The update that moves a job at ``attempt`` to processing at the next one, and its
    values."""
    update = (
        "SET #status = :processing, #attempt = :next, #started_at = :now, #updated_at = :now, "
        f"{_SET_STATUS_KEYS} REMOVE #lane, #error"
    )
    values = {
        ":processing": JobStatus.PROCESSING.value,
        ":next": attempt + 1,
        ":now": now.isoformat(),
    } | _status_keys(JobStatus.PROCESSING, now, job_id)
    return update, values


def _owner_partition(owner: str) -> str:
    return f"JOBS#{owner}"


def _owner_keys(job: Job) -> dict[str, Any]:
    """The job's place in its owner's listing: by acceptance, and never changed after."""
    return {
        "gsi1pk": _owner_partition(job.owner),
        "gsi1sk": f"{_moment(job.created_at)}#{job.job_id}",
    }


def _upgrade(plain: dict[str, Any]) -> dict[str, Any]:
    """Items written before job kinds were registered: ``kind`` was task or document, with
    ``task_type`` or ``document_type``, and a task's ``data`` was its bare text."""
    if plain.get("kind") == "task":
        plain["kind"] = plain.pop("task_type")
        plain["data"] = json.dumps({"kind": plain["kind"], "text": plain.get("data", "")})
    elif plain.get("kind") == "document":
        plain["kind"] = plain.pop("document_type")
    elif plain.get("kind") == "fetch" and not plain.get("data"):
        plain["data"] = "{}"
    return plain


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    plain = from_item({name: value for name, value in item.items() if name not in JSON_FIELDS})
    plain |= {name: from_json_attribute(item[name]) for name in JSON_FIELDS if name in item}
    return _upgrade(plain)


def _job(item: dict[str, Any]) -> Job:
    plain = _plain(item)
    plain["queue_seq"] = plain.pop("seq", None)
    return Job.model_validate(plain)


def _summary(item: dict[str, Any]) -> JobSummary:
    plain = _plain(item)
    plain["job_id"] = str(plain["pk"]).removeprefix("JOB#")
    return JobSummary.model_validate(plain)


def _cancelled_by_condition(error: ClientError) -> list[bool]:
    """Per action of a cancelled transaction: did its condition fail?"""
    return [code == "ConditionalCheckFailed" for code in cancellation_codes(error)]


def _placeholders(*expressions: str) -> dict[str, str]:
    # Every attribute goes through a placeholder: status, result, error... are reserved words.
    return {f"#{name}": name for name in re.findall(r"#(\w+)", " ".join(expressions))}


def _job_item(
    job: Job, status: JobStatus, since: datetime, result_is_json: bool = False
) -> dict[str, Any]:
    """A new job's item, with its keys in the status index and its owner's listing."""
    fields: dict[str, Any] = job.model_dump(mode="json", exclude_none=True, exclude={"queue_seq"})
    fields["data"] = _Json(fields["data"])  # a pydantic model's dump, read back by pydantic
    if result_is_json and "result" in fields:
        fields["result"] = _Json(fields["result"])
    keys = _status_keys(status, since, job.job_id)
    return (
        job_key(job.job_id)
        | _values(fields)
        | _values({"status_pk": keys[":status_pk"], "status_sk": keys[":status_sk"]})
        | _values(_owner_keys(job))
    )


class DynamoJobTable(DynamoTable):
    """Jobs in one DynamoDB table; transitions are single conditional ``UpdateItem`` calls."""

    def create(self, job: Job, max_pending: int) -> None:
        try:
            transact_write(self._client, self._new_pending(job, max_pending))
        except ClientError as error:
            failed = _cancelled_by_condition(error)
            if len(failed) == 2 and failed[1]:
                raise PendingQuotaExceeded(max_pending) from error
            if len(failed) == 2 and failed[0]:
                raise StaleTransition(job.job_id) from error
            raise

    def create_singleton(self, job: Job, max_pending: int, replacing: str | None) -> None:
        marker: dict[str, Any] = {
            "TableName": self._table,
            "Item": singleton_key(job.kind) | _values({"job_id": job.job_id}),
        }
        if replacing is None:
            marker["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            marker["ConditionExpression"] = "job_id = :replacing"
            marker["ExpressionAttributeValues"] = _values({":replacing": replacing})
        try:
            transact_write(self._client, [*self._new_pending(job, max_pending), {"Put": marker}])
        except ClientError as error:
            failed = _cancelled_by_condition(error)
            if len(failed) == 3 and failed[2]:
                raise SingletonMoved(f"another {job.kind} job is active") from error
            if len(failed) == 3 and failed[1]:
                raise PendingQuotaExceeded(max_pending) from error
            if len(failed) == 3 and failed[0]:
                raise StaleTransition(job.job_id) from error
            raise

    def singleton(self, kind: str) -> str | None:
        item = self._get_item(singleton_key(kind))
        return item["job_id"]["S"] if item else None

    def record(self, job: Job, *, result_is_json: bool = False) -> None:
        if not job.status.is_final:
            raise ValueError(f"only an ended job is recorded, not a {job.status} one")
        item = _job_item(job, job.status, job.finished_at or job.created_at, result_is_json)
        try:
            self._client.put_item(
                TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(pk)"
            )
        except ClientError as error:
            if is_condition_failure(error):
                raise StaleTransition(job.job_id) from error
            raise

    def _new_pending(self, job: Job, max_pending: int | None) -> list[dict[str, Any]]:
        """Put the job, and count it in its owner's quota (refused past ``max_pending``)."""
        item = _job_item(job, JobStatus.PENDING, job.created_at)
        quota: dict[str, Any] = {
            "TableName": self._table,
            "Key": quota_key(job.owner),
            "UpdateExpression": "ADD pending :one",
            "ExpressionAttributeValues": _values({":one": 1}),
        }
        if max_pending is not None:
            quota["ConditionExpression"] = "attribute_not_exists(pending) OR pending < :max"
            quota["ExpressionAttributeValues"] = _values({":one": 1, ":max": max_pending})
        return [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": item,
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {"Update": quota},
        ]

    def retry(self, failed: Job, new: Job) -> None:
        link = {
            "Update": {
                "TableName": self._table,
                "Key": job_key(failed.job_id),
                "UpdateExpression": "SET #retried_as = :new",
                "ConditionExpression": "attribute_exists(pk) AND #status = :failed"
                " AND attribute_not_exists(#retried_as)",
                "ExpressionAttributeNames": {"#retried_as": "retried_as", "#status": "status"},
                "ExpressionAttributeValues": _values(
                    {":new": new.job_id, ":failed": JobStatus.FAILED.value}
                ),
            }
        }
        try:
            transact_write(self._client, [*self._new_pending(new, None), link])
        except ClientError as error:
            failed_conditions = _cancelled_by_condition(error)
            if len(failed_conditions) == 3 and failed_conditions[2]:
                raise NotRetryable(
                    f"Job {failed.job_id} is not failed, or was already retried"
                ) from error
            raise

    def pending_count(self, owner: str) -> int:
        item = self._get_item(quota_key(owner))
        return int(item["pending"]["N"]) if item else 0

    def get(self, job_id: str) -> Job | None:
        item = self._get_item(job_key(job_id))
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
        return query_count(
            self._client,
            TableName=self._table,
            IndexName=QUEUE_INDEX,
            KeyConditionExpression="lane = :lane AND seq < :seq",
            ExpressionAttributeValues=_values({":lane": LANE, ":seq": seq}),
        )

    def claim(self, job: Job, now: datetime) -> Job:
        update, values = _claim_update(job.attempt, now, job.job_id)
        condition = "#status = :expected AND #attempt = :attempt"
        values |= {":expected": job.status.value, ":attempt": job.attempt}
        if job.status is JobStatus.PROCESSING:  # interrupted: it left pending (and the quota)
            if not job.interrupted:
                raise StaleTransition(job.job_id)
            return self._update(
                job.job_id, update, f"{condition} AND attribute_exists(#error)", values
            )
        if job.status is not JobStatus.PENDING:
            raise StaleTransition(job.job_id)
        self._leave_pending(job.job_id, job.owner, update, condition, values)
        return job.claimed(now)

    def claim_new(self, job_id: str, owner: str, kind: str, now: datetime) -> None:
        update, values = _claim_update(0, now, job_id)
        condition = "#status = :pending AND #attempt = :never AND #owner = :owner AND #kind = :kind"
        values |= {
            ":pending": JobStatus.PENDING.value,
            ":never": 0,
            ":owner": owner,
            ":kind": kind,
        }
        self._leave_pending(job_id, owner, update, condition, values)

    def _leave_pending(
        self, job_id: str, owner: str, update: str, condition: str, values: dict[str, Any]
    ) -> None:
        """Move a pending job on and take it off its owner's quota, in one transaction."""
        actions: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": job_key(job_id),
                    "UpdateExpression": update,
                    "ConditionExpression": f"attribute_exists(pk) AND {condition}",
                    "ExpressionAttributeNames": _placeholders(update, condition),
                    "ExpressionAttributeValues": _values(values),
                }
            },
            {
                "Update": {
                    "TableName": self._table,
                    "Key": quota_key(owner),
                    "UpdateExpression": "ADD pending :minus_one",
                    "ExpressionAttributeValues": _values({":minus_one": -1}),
                }
            },
        ]
        try:
            transact_write(self._client, actions)
        except ClientError as error:
            if any(_cancelled_by_condition(error)):
                raise StaleTransition(job_id) from error
            raise

    def finish(
        self,
        job: Job,
        status: JobStatus,
        now: datetime,
        *,
        result: str | None = None,
        result_is_json: bool = False,
        error: str | None = None,
        expires_at: int | None = None,
    ) -> Job:
        stored = _Json(result) if result is not None and result_is_json else result
        outcome = {":result": stored} if result is not None else {":error": error}
        field = "result" if result is not None else "error"
        done = ", #progress = :hundred" if status is JobStatus.COMPLETED else ""
        ttl = ", #expires_at = :expires_at" if expires_at is not None else ""
        return self._update(
            job.job_id,
            f"SET #status = :status, #finished_at = :now, #updated_at = :now, #{field} = :{field}, "
            f"{_SET_STATUS_KEYS}{done}{ttl}",
            "#status = :processing AND #attempt = :attempt",
            {
                ":status": status.value,
                ":now": now.isoformat(),
                ":processing": JobStatus.PROCESSING.value,
                ":attempt": job.attempt,
            }
            | outcome
            | _status_keys(status, now, job.job_id)
            | ({":hundred": 100} if done else {})
            | ({":expires_at": expires_at} if ttl else {}),
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

    def note_interrupted(self, job: Job, reason: str) -> Job:
        return self._update(
            job.job_id,
            "SET #error = :error",
            "#status = :processing AND #attempt = :attempt",
            {":error": reason, ":processing": JobStatus.PROCESSING.value, ":attempt": job.attempt},
        )

    def abandon(
        self,
        job_id: str,
        error: str,
        now: datetime,
        *,
        expires_at: int | None = None,
        dead_letter_body: str | None = None,
    ) -> Job:
        extra: dict[str, Any] = {":expires_at": expires_at} if expires_at is not None else {}
        if dead_letter_body is not None:
            extra[":dead_letter_body"] = dead_letter_body
        sets = "".join(f", #{name[1:]} = {name}" for name in extra)
        update = (
            "SET #status = :failed, #finished_at = :now, #updated_at = :now, #error = :error, "
            f"{_SET_STATUS_KEYS}{sets} REMOVE #lane"
        )
        for _ in range(3):  # the status may move between the read and the write; read again
            job = self.get(job_id)
            if job is None or job.status.is_final:
                raise StaleTransition(job_id)
            values = (
                {
                    ":failed": JobStatus.FAILED.value,
                    ":now": now.isoformat(),
                    ":error": error,
                    ":seen": job.status.value,
                }
                | _status_keys(JobStatus.FAILED, now, job_id)
                | extra
            )
            try:
                if job.status is JobStatus.PROCESSING:
                    return self._update(job_id, update, "#status = :seen", values)
                self._leave_pending(job_id, job.owner, update, "#status = :seen", values)
            except StaleTransition:
                continue
            return job.model_copy(
                update={
                    "status": JobStatus.FAILED,
                    "finished_at": now,
                    "updated_at": now,
                    "error": error,
                    "queue_seq": None,
                    "expires_at": expires_at,
                    "dead_letter_body": dead_letter_body,
                }
            )
        raise StaleTransition(job_id)

    # --- every owner's jobs, by status -----------------------------------------------------

    def by_status(
        self,
        status: JobStatus,
        *,
        limit: int,
        cursor: str | None = None,
        newest_first: bool = True,
        before: datetime | None = None,
    ) -> JobPage:
        sort, values = "", {}
        if before is not None:
            sort, values = "status_sk < :before", {":before": _moment(before)}
        items, next_cursor = self._page(
            STATUS_INDEX,
            f"JOBS#{status.value}",
            limit,
            cursor,
            sort=sort,
            values=values,
            newest_first=newest_first,
        )
        return JobPage(items=[_summary(item) for item in items], next_cursor=next_cursor)

    def count_by_status(self, status: JobStatus, since: datetime | None = None) -> int:
        condition = "status_pk = :pk"
        values: dict[str, Any] = {":pk": f"JOBS#{status.value}"}
        if since is not None:
            condition += " AND status_sk >= :since"
            values[":since"] = _moment(since)
        return query_count(
            self._client,
            TableName=self._table,
            IndexName=STATUS_INDEX.name,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=_values(values),
        )

    # --- one owner's jobs ------------------------------------------------------------------

    def by_owner(self, owner: str, *, limit: int, cursor: str | None = None) -> OwnerJobPage:
        """The page's keys from ``gsi1`` (keys only), then the jobs themselves, strongly
        consistent, from the table. A job accepted in the last second or so may not be listed
        yet; jobs stored before the index keys were written (``gsi1pk``) never are."""
        # Locked to this owner's partition: a cursor can never page through another's jobs.
        items, next_cursor = self._page(
            OWNER_INDEX, _owner_partition(owner), limit, cursor, newest_first=True
        )
        return OwnerJobPage(items=[_job(item) for item in items], next_cursor=next_cursor)

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
