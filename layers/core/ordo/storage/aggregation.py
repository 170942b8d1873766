"""DynamoDB adapters for aggregation.

================  =======  ===================================================================
pk                sk       what
================  =======  ===================================================================
``POST#<id>``     POST     a post; ``gsi1pk = POSTS`` and ``gsi2pk = POSTS#USER#<user id>``,
                           both sorted by the id (``gsi1sk``/``gsi2sk``, 16 digits)
``LOCK#fetch``    LOCK     the fetch lock: its holder and ``expires_at`` (epoch seconds)
``FETCH#last``    SUCCESS  when the last successful fetch finished, and its counts
================  =======  ===================================================================

An upsert reads the stored posts (BatchGetItem), writes only the new and changed ones
(BatchWriteItem), and retries unprocessed keys and items with backoff. Both indexes hold only
keys, so a page of ``/data`` is a ``Query`` for its keys and a ``BatchGetItem`` for its posts.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from ordo.aggregation import FetchCounts, Post, PostPage
from ordo.errors import Unavailable
from ordo.storage.attributes import from_item, to_item
from ordo.storage.batch import base_items
from ordo.storage.pages import GSI1, GSI2, DynamoTable
from ordo.storage.transactions import is_condition_failure

WRITE_BATCH = 25  # BatchWriteItem's limit
ATTEMPTS = 6
LOCK_KEY = {"pk": {"S": "LOCK#fetch"}, "sk": {"S": "LOCK"}}
LOG_KEY = {"pk": {"S": "FETCH#last"}, "sk": {"S": "SUCCESS"}}


def post_key(post_id: int) -> dict[str, Any]:
    return {"pk": {"S": f"POST#{post_id}"}, "sk": {"S": "POST"}}


def _order(post_id: int) -> str:
    return f"{post_id:016d}"


def _item(post: Post) -> dict[str, Any]:
    index = {
        "gsi1pk": "POSTS",
        "gsi1sk": _order(post.id),
        "gsi2pk": f"POSTS#USER#{post.user_id}",
        "gsi2sk": _order(post.id),
    }
    return post_key(post.id) | to_item(post.model_dump() | index)


def _post(item: dict[str, Any]) -> Post:
    return Post.model_validate(from_item(item))


class DynamoPostStore(DynamoTable):
    def upsert(self, posts: list[Post]) -> tuple[int, int]:
        stored = self._stored([post.id for post in posts])
        new = [post for post in posts if post.id not in stored]
        changed = [post for post in posts if post.id in stored and stored[post.id] != post]
        self._write([_item(post) for post in new + changed])
        return len(new), len(changed)

    def _stored(self, ids: list[int]) -> dict[int, Post]:
        keys = [post_key(i) for i in ids]
        stored = [
            _post(item) for item in base_items(self._client, self._table, keys, sleep=self._sleep)
        ]
        return {post.id: post for post in stored}

    def _write(self, items: list[dict[str, Any]]) -> None:
        for start in range(0, len(items), WRITE_BATCH):
            batch = [{"PutRequest": {"Item": item}} for item in items[start : start + WRITE_BATCH]]
            pending: Any = {self._table: batch}
            for attempt in range(ATTEMPTS):
                response = self._client.batch_write_item(RequestItems=pending)
                pending = response.get("UnprocessedItems") or {}
                if not pending:
                    break
                self._backoff(attempt)
            else:
                raise Unavailable("The table is busy; some posts could not be stored")

    def _backoff(self, attempt: int) -> None:
        self._sleep(random.uniform(0, 0.05 * 2**attempt))

    def page(self, user_id: int | None, limit: int, cursor: str | None) -> PostPage:
        index = GSI1 if user_id is None else GSI2
        partition = "POSTS" if user_id is None else f"POSTS#USER#{user_id}"
        items, next_cursor = self._page(index, partition, limit, cursor)
        return PostPage(items=[_post(item) for item in items], next_cursor=next_cursor)


class DynamoFetchLock(DynamoTable):
    """A conditional put: free, or held past its expiry. A crashed holder blocks no one long."""

    def acquire(self, holder: str, now: datetime, ttl: timedelta) -> bool:
        epoch = int(now.timestamp())
        try:
            self._client.put_item(
                TableName=self._table,
                Item=LOCK_KEY
                | {
                    "holder": {"S": holder},
                    "expires_at": {"N": str(epoch + int(ttl.total_seconds()))},
                },
                ConditionExpression="attribute_not_exists(pk) OR expires_at <= :now",
                ExpressionAttributeValues={":now": {"N": str(epoch)}},
            )
        except ClientError as error:
            if is_condition_failure(error):
                return False
            raise
        return True

    def release(self, holder: str) -> None:
        try:
            self._client.delete_item(
                TableName=self._table,
                Key=LOCK_KEY,
                ConditionExpression="holder = :holder",
                ExpressionAttributeValues={":holder": {"S": holder}},
            )
        except ClientError as error:  # expired and taken over meanwhile: not ours to delete
            if not is_condition_failure(error):
                raise


class DynamoFetchLog(DynamoTable):
    def last_success(self) -> datetime | None:
        item = self._get_item(LOG_KEY)
        return datetime.fromisoformat(item["finished_at"]["S"]) if item else None

    def record_success(self, now: datetime, counts: FetchCounts) -> None:
        self._client.put_item(
            TableName=self._table,
            Item=LOG_KEY | to_item({"finished_at": now.isoformat()} | counts.model_dump()),
        )
