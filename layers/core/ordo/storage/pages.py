"""Every page of a DynamoDB ``Query``, following ``LastEvaluatedKey``.

botocore's ``get_paginator("query")`` does the same, but its first use in a container loads the
paginator model and builds the paginator's class: about 8 ms of a cold start.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import QueryOutputTypeDef


def query_pages(client: DynamoDBClient, **params: Any) -> Iterator[QueryOutputTypeDef]:
    """Each page of the query ``params`` describe, in order, until DynamoDB reports no more."""
    while True:
        page = client.query(**params)
        yield page
        if "LastEvaluatedKey" not in page:
            return
        params = params | {"ExclusiveStartKey": page["LastEvaluatedKey"]}


def query_count(client: DynamoDBClient, **params: Any) -> int:
    """How many items the query ``params`` describe match (``Select=COUNT``), over every page."""
    return sum(page["Count"] for page in query_pages(client, Select="COUNT", **params))
