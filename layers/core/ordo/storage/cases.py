"""DynamoDB and SQS adapters for cases.

==================  ======  ==================================================================
pk                  sk      what
==================  ======  ==================================================================
``CASE#<id>``       CASE    the case; ``gsi1pk = CASES#<owner>`` (the owner's cases) and
                            ``gsi2pk = CASES`` (every case, for admins), both sorted by
                            ``<created epoch ms, 13 digits>#<id>``
==================  ======  ==================================================================

A status filter is a range of that sort key, so every listing is one ``Query``. Both indexes
hold only keys (a case's notes, summary and steps are clinical text), so the page's cases are
then read from the table with one ``BatchGetItem``.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from ordo.cases import Case, CaseTick, to_millis
from ordo.errors import StaleTransition
from ordo.storage.attributes import from_item, to_item
from ordo.storage.pages import GSI1, GSI2, DynamoTable
from ordo.storage.transactions import is_condition_failure

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

OWNER_INDEX = GSI1
ALL_INDEX = GSI2
MAX_DELAY_SECONDS = 900  # SQS's limit on DelaySeconds


def case_key(case_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"CASE#{case_id}"}, "sk": {"S": "CASE"}}


def _sort_key(millis: int, case_id: str = "") -> str:
    return f"{millis:013d}#{case_id}"


def _item(case: Case) -> dict[str, Any]:
    order = _sort_key(to_millis(case.created_at), case.case_id)
    index = {"gsi1pk": f"CASES#{case.owner}", "gsi1sk": order, "gsi2pk": "CASES", "gsi2sk": order}
    return case_key(case.case_id) | to_item(case.model_dump(mode="json") | index)


def _case(item: dict[str, Any]) -> Case:
    return Case.model_validate(from_item(item))


class DynamoCaseTable(DynamoTable):
    def create(self, case: Case) -> None:
        self._client.put_item(
            TableName=self._table, Item=_item(case), ConditionExpression="attribute_not_exists(pk)"
        )

    def get(self, case_id: str) -> Case | None:
        item = self._get_item(case_key(case_id))
        return _case(item) if item else None

    def advance(self, before: Case, after: Case) -> None:
        try:
            self._client.put_item(
                TableName=self._table,
                Item=_item(after),
                ConditionExpression="#status = :before",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":before": {"S": before.status.value}},
            )
        except ClientError as error:
            if is_condition_failure(error):
                raise StaleTransition(before.case_id) from error
            raise

    def page(
        self,
        owner: str | None,
        created_from: datetime | None,
        created_to: datetime | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[Case], str | None]:
        index = ALL_INDEX if owner is None else OWNER_INDEX
        partition = "CASES" if owner is None else f"CASES#{owner}"
        low = _sort_key(to_millis(created_from)) if created_from else None
        high = _sort_key(to_millis(created_to) + 1) if created_to else None  # + 1: inclusive
        sort = ""
        if low and high:
            sort = f"{index.sk} BETWEEN :low AND :high"
        elif low:
            sort = f"{index.sk} >= :low"
        elif high:
            sort = f"{index.sk} < :high"
        values = {name: v for name, v in ((":low", low), (":high", high)) if v}

        def within(start: str) -> bool:
            # Time moved on since that page: its key may now lie outside this status's range.
            return not ((low and start < low) or (high and start >= high))

        items, next_cursor = self._page(
            index,
            partition,
            limit,
            cursor,
            sort=sort,
            values=values,
            newest_first=True,
            within=within,
        )
        return [_case(item) for item in items], next_cursor


class SqsCaseTimer:
    """One delayed message per transition, on a standard queue (DelaySeconds per message)."""

    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def schedule(self, case_id: str, due: list[datetime], now: datetime) -> None:
        entries: Any = [
            {
                "Id": str(number),
                "MessageBody": CaseTick(case_id=case_id, due=when).model_dump_json(),
                "DelaySeconds": min(
                    MAX_DELAY_SECONDS, max(0, math.ceil((when - now).total_seconds()))
                ),
            }
            for number, when in enumerate(due)
        ]
        response = self._client.send_message_batch(QueueUrl=self._queue_url, Entries=entries)
        if response.get("Failed"):
            raise RuntimeError(f"could not schedule case {case_id}: {response['Failed']}")
