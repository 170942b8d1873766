"""DynamoDB adapter for the product catalog.

===============  =====================  =========================================================
pk               sk                     what
===============  =====================  =========================================================
``CATALOG``      ``PRODUCT#<id>``       a product (soft-deleted ones stay, flagged ``deleted``)
``CATALOG``      ``#CHANGE#<version>``  the products one write made (``products``), ``version``
                                        zero-padded so they sort; ``expires_at`` (TTL)
``CATALOG``      ``#VERSION``           ``version``: that of the newest change record
``SKU#<sku>``    ``UNIQUE``             claims a SKU (case-insensitive) for one live product
===============  =====================  =========================================================

One partition holds the catalog, so loading it is a strongly consistent ``Query``, never a
scan, and a read that saw version *v* loads data at least as new as *v*.

Every write is one transaction: its products, the change record for *v+1*, and ``#VERSION``
moved from *v* to *v+1* on the condition that it still says *v*. Two admins who write at once
both read *v*; one commits, the other's condition fails and it tries again at *v+1*, so each
version has exactly one change record. A strongly consistent GetItem is serializable with
transactions, so a reader that saw version *V* finds every record up to *V* committed; its
strongly consistent Query of ``#CHANGE#`` records returns them unless TTL removed some, and a
missing one makes the domain load everything (never a wrong index).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from ordo.catalog import Change, Product, SkuTaken
from ordo.errors import Conflict, Unavailable
from ordo.storage.attributes import from_item, to_item
from ordo.storage.pages import DynamoTable, query_pages
from ordo.storage.transactions import backoff, cancellation_codes, transact_write

PARTITION = "CATALOG"
VERSION_SK = "#VERSION"
VERSION_KEY = {"pk": {"S": PARTITION}, "sk": {"S": VERSION_SK}}
# Change records outlive any warm container; one that finds a record gone loads everything.
CHANGE_TTL = timedelta(days=1)
# Each lost race means another write committed, so a writer loses at most once per rival, and
# retries after a jittered pause: 10 attempts outlast 9 admins writing at once, pausing ~2.2 s
# at worst in all.
VERSION_ATTEMPTS = 10


def product_key(product_id: str) -> dict[str, Any]:
    return {"pk": {"S": PARTITION}, "sk": {"S": f"PRODUCT#{product_id}"}}


def change_sk(version: int) -> str:
    return f"#CHANGE#{version:020d}"


def sku_key(sku: str) -> dict[str, Any]:
    return {"pk": {"S": f"SKU#{sku.casefold()}"}, "sk": {"S": "UNIQUE"}}


def _fields(product: Product) -> dict[str, Any]:
    fields = product.model_dump() | {"deleted": product.deleted}
    fields |= {k: v.isoformat() for k, v in fields.items() if isinstance(v, datetime)}
    return to_item(fields)


def _item(product: Product) -> dict[str, Any]:
    return product_key(product.id) | _fields(product)


def _change(item: dict[str, Any]) -> Change:
    products = tuple(_product(written["M"]) for written in item["products"]["L"])
    return Change(int(item["version"]["N"]), products)


def _product(item: dict[str, Any]) -> Product:
    return Product.model_validate(from_item(item))


class DynamoProductTable(DynamoTable):
    def version(self) -> int:
        item = self._get_item(VERSION_KEY)
        return int(item["version"]["N"]) if item else 0

    def changes(self, after: int, through: int) -> tuple[Change, ...]:
        # One page (1 MB) at most: a record beyond it counts as missing, so a full load.
        response = self._client.query(
            TableName=self._table,
            KeyConditionExpression="pk = :catalog AND sk BETWEEN :first AND :last",
            ExpressionAttributeValues={
                ":catalog": {"S": PARTITION},
                ":first": {"S": change_sk(after + 1)},
                ":last": {"S": change_sk(through)},
            },
            ConsistentRead=True,
        )
        return tuple(_change(item) for item in response["Items"])

    def product(self, product_id: str) -> Product | None:
        item = self._get_item(product_key(product_id))
        return _product(item) if item else None

    def load(self) -> tuple[int, list[Product]]:
        version = self.version()
        products: list[Product] = []
        for page in query_pages(
            self._client,
            TableName=self._table,
            KeyConditionExpression="pk = :catalog AND begins_with(sk, :product)",
            ExpressionAttributeValues={":catalog": {"S": PARTITION}, ":product": {"S": "PRODUCT#"}},
            ConsistentRead=True,
        ):
            products += [p for item in page["Items"] if not (p := _product(item)).deleted]
        return version, products

    def _advance(self, seen: int) -> dict[str, Any]:
        values = {":next": {"N": str(seen + 1)}}
        if seen:
            condition = "version = :seen"
            values[":seen"] = {"N": str(seen)}
        else:
            condition = "attribute_not_exists(version)"
        return {
            "Update": {
                "TableName": self._table,
                "Key": VERSION_KEY,
                "UpdateExpression": "SET version = :next",
                "ConditionExpression": condition,
                "ExpressionAttributeValues": values,
            }
        }

    def _record(self, version: int, product: Product) -> dict[str, Any]:
        """The change record of ``version``: the product as written. The item keeps a list, so
        that a bulk write can record several products in one version."""
        expires = product.updated_at + CHANGE_TTL
        record = {
            "pk": {"S": PARTITION},
            "sk": {"S": change_sk(version)},
            "version": {"N": str(version)},
            "products": {"L": [{"M": _fields(product)}]},
            "expires_at": {"N": str(int(expires.timestamp()))},
        }
        return {"Put": {"TableName": self._table, "Item": record}}

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
        self._commit([put, self._claim(product)], product, claim_at=1)

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
        self._commit(actions, after, claim_at=claim_at)

    def _commit(
        self, actions: list[dict[str, Any]], product: Product, claim_at: int | None
    ) -> None:
        """``actions``, the next version and its change record, in one transaction."""
        advance_at = len(actions)
        for attempt in range(VERSION_ATTEMPTS):
            if attempt:
                backoff(attempt - 1)  # the last one lost the version race
            seen = self.version()
            try:
                transact_write(
                    self._client, [*actions, self._advance(seen), self._record(seen + 1, product)]
                )
                return
            except ClientError as error:
                codes = cancellation_codes(error)
                failed = {i for i, code in enumerate(codes) if code == "ConditionalCheckFailed"}
                if claim_at in failed:
                    raise SkuTaken(product.sku) from error
                if failed - {advance_at}:
                    raise Conflict("The product changed meanwhile; read it again") from error
                if not failed:
                    raise
                # only the version moved: another write committed first
        raise Unavailable("Too many simultaneous catalog changes; please retry")
