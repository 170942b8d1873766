"""``transact_write``: DynamoDB's transaction conflicts are retried; failed conditions are not."""

from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.session import get_session
from botocore.stub import Stubber

from ordo.errors import Unavailable
from ordo.storage import transactions
from ordo.storage.transactions import transact_write

ACTIONS: list[dict[str, Any]] = [
    {"Put": {"TableName": "t", "Item": {"pk": {"S": "A"}, "sk": {"S": "B"}}}},
    {
        "Update": {
            "TableName": "t",
            "Key": {"pk": {"S": "Q"}, "sk": {"S": "P"}},
            "UpdateExpression": "ADD n :one",
            "ExpressionAttributeValues": {":one": {"N": "1"}},
        }
    },
]


def cancelled(*codes: str) -> dict[str, Any]:
    return {
        "service_error_code": "TransactionCanceledException",
        "service_message": "Transaction cancelled",
        "response_meta": {},
        "modeled_fields": {"CancellationReasons": [{"Code": code} for code in codes]},
    }


@pytest.fixture
def client_and_stub(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Stubber]:
    monkeypatch.setattr("ordo.storage.transactions.time.sleep", lambda _: None)
    client = get_session().create_client("dynamodb", region_name="us-east-1")
    return client, Stubber(client)


def test_a_conflict_is_retried_until_the_transaction_goes_through(
    client_and_stub: tuple[Any, Stubber],
) -> None:
    client, stub = client_and_stub
    stub.add_client_error("transact_write_items", **cancelled("None", "TransactionConflict"))
    stub.add_client_error("transact_write_items", **cancelled("TransactionConflict", "None"))
    stub.add_response("transact_write_items", {})
    with stub:
        transact_write(client, ACTIONS)
    stub.assert_no_pending_responses()


def test_a_failed_condition_is_not_retried(client_and_stub: tuple[Any, Stubber]) -> None:
    client, stub = client_and_stub
    stub.add_client_error("transact_write_items", **cancelled("None", "ConditionalCheckFailed"))
    with stub, pytest.raises(ClientError) as raised:
        transact_write(client, ACTIONS)
    assert raised.value.response["CancellationReasons"][1]["Code"] == "ConditionalCheckFailed"


def test_conflicts_that_never_end_become_unavailable(client_and_stub: tuple[Any, Stubber]) -> None:
    client, stub = client_and_stub
    for _ in range(transactions.ATTEMPTS):
        stub.add_client_error("transact_write_items", **cancelled("TransactionConflict", "None"))
    with stub, pytest.raises(Unavailable):
        transact_write(client, ACTIONS)
    stub.assert_no_pending_responses()
