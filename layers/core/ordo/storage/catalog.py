"""DynamoDB adapter for the product catalog.

===============  ===================  ===========================================================
pk               sk                   what
===============  ===================  ===========================================================
``CATALOG``      ``PRODUCT#<id>``     a product (soft-deleted ones stay, flagged ``deleted``)
``CATALOG``      ``#VERSION``         ``version``: bumped by every write, in its transaction
``SKU#<sku>``    ``UNIQUE``           claims a SKU (case-insensitive) for one live product
===============  ===================  ===========================================================

One partition holds the catalog, so loading it is a strongly consistent ``Query``, never a
scan, and a read that saw version *v* loads data at least as new as *v*.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from ordo.catalog import Product, SkuTaken
from ordo.errors import Conflict
from ordo.storage.attributes import from_item, to_item
from ordo.storage.transactions import cancellation_codes, transact_write

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

PARTITION = "CATALOG"
VERSION_KEY = {"pk": {"S": PARTITION}, "sk": {"S": "#VERSION"}}


def product_key(product_id: str) -> dict[str, Any]:
    return {"pk": {"S": PARTITION}, "sk": {"S": f"PRODUCT#{product_id}"}}


def sku_key(sku: str) -> dict[str, Any]:
    return {"pk": {"S": f"SKU#{sku.casefold()}"}, "sk": {"S": "UNIQUE"}}


def _item(product: Product) -> dict[str, Any]:
    fields = product.model_dump() | {"deleted": product.deleted}
    fields |= {k: v.isoformat() for k, v in fields.items() if isinstance(v, datetime)}
    return product_key(product.id) | to_item(fields)


def _product(item: dict[str, Any]) -> Product:
    return Product.model_validate(from_item(item))


class DynamoProductTable:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def version(self) -> int:
        item = self._client.get_item(
            TableName=self._table, Key=VERSION_KEY, ConsistentRead=True
        ).get("Item")
        return int(item["version"]["N"]) if item else 0

    def load(self) -> tuple[int, list[Product]]:
        version = self.version()
        products: list[Product] = []
        paginator = self._client.get_paginator("query")
        for page in paginator.paginate(
            TableName=self._table,
            KeyConditionExpression="pk = :catalog AND begins_with(sk, :product)",
            ExpressionAttributeValues={":catalog": {"S": PARTITION}, ":product": {"S": "PRODUCT#"}},
            ConsistentRead=True,
        ):
            products += [p for item in page["Items"] if not (p := _product(item)).deleted]
        return version, products

    def _bump(self) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self._table,
                "Key": VERSION_KEY,
                "UpdateExpression": "ADD version :one",
                "ExpressionAttributeValues": {":one": {"N": "1"}},
            }
        }

    def _claim(self, product: Product) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self._table,
                "Item": sku_key(product.sku) | {"product_id": {"S": product.id}},
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    def _release(self, product: Product) -> dict[str, Any]:
        return {
            "Delete": {
                "TableName": self._table,
                "Key": sku_key(product.sku),
                "ConditionExpression": "product_id = :id",
                "ExpressionAttributeValues": {":id": {"S": product.id}},
            }
        }

    def create(self, product: Product) -> None:
        put = {
            "Put": {
                "TableName": self._table,
                "Item": _item(product),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }
        self._transact([put, self._claim(product), self._bump()], product, claim_at=1)

    def replace(self, before: Product, after: Product) -> None:
        put = {
            "Put": {
                "TableName": self._table,
                "Item": _item(after),
                "ConditionExpression": "updated_at = :seen AND deleted = :live",
                "ExpressionAttributeValues": {
                    ":seen": {"S": before.updated_at.isoformat()},
                    ":live": {"BOOL": False},
                },
            }
        }
        actions = [put]
        claim_at = None
        if after.deleted:
            actions.append(self._release(before))
        elif after.sku.casefold() != before.sku.casefold():
            claim_at = len(actions)
            actions += [self._claim(after), self._release(before)]
        self._transact([*actions, self._bump()], after, claim_at=claim_at)

    def _transact(
        self, actions: list[dict[str, Any]], product: Product, claim_at: int | None
    ) -> None:
        try:
            transact_write(self._client, actions)
        except ClientError as error:
            codes = cancellation_codes(error)
            failed = [i for i, code in enumerate(codes) if code == "ConditionalCheckFailed"]
            if claim_at is not None and claim_at in failed:
                raise SkuTaken(product.sku) from error
            if failed:
                raise Conflict("The product changed meanwhile; read it again") from error
            raise
