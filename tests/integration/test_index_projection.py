"""What the table's indexes hold, on the stack made from template.yaml: keys and listing fields,
never a password hash, token state or clinical text; and the listings still show it all."""

from __future__ import annotations

from typing import Any

from tests.harness import InProcessStack

# The user's password hash and token generation, a refresh-token family's state, and a case's
# notes and the summary and steps of its review.
SENSITIVE = {"password_hash", "token_generation", "current", "revoked", "notes", "summary", "steps"}
NOTES = "Patient reports sharp pain after a fall; prior steroid injection gave no relief."


def _table(cloud: InProcessStack) -> str:
    return str(cloud.stack.physical["JobsTable"]["Ref"])


def _index_items(cloud: InProcessStack) -> dict[str, list[dict[str, Any]]]:
    """Every item of every index, as a Query on the index would return it."""
    table = _table(cloud)
    indexes = cloud.dynamodb.describe_table(TableName=table)["Table"]["GlobalSecondaryIndexes"]
    found: dict[str, list[dict[str, Any]]] = {}
    for index in indexes:
        name = index["IndexName"]
        pages = cloud.dynamodb.get_paginator("scan").paginate(TableName=table, IndexName=name)
        found[name] = [item for page in pages for item in page["Items"]]
    return found


def _item(cloud: InProcessStack, pk: str, sk: str) -> dict[str, Any]:
    key = {"pk": {"S": pk}, "sk": {"S": sk}}
    return cloud.dynamodb.get_item(TableName=_table(cloud), Key=key)["Item"]


def test_no_index_holds_a_password_hash_token_state_or_clinical_text(cloud: InProcessStack) -> None:
    # Given a signed-in user, a reviewed case with notes, and a finished job
    alice = cloud.sign_in("alice")
    admin = cloud.sign_up("root", admin=True)
    created = cloud.request("POST", "/cases", {"notes": NOTES})
    assert created.status == 201, created.body
    case_id = created.body["case_id"]
    assert cloud.request("GET", f"/cases/{case_id}").body["status"] == "complete"
    submitted = cloud.request("POST", "/tasks", {"type": "reverse", "data": "abc"})
    assert submitted.status == 202, submitted.body
    cloud.drain()
    # (the table itself holds every sensitive attribute, so the check below is not vacuous)
    user = _item(cloud, f"USER#{alice.id}", "USER")
    case = _item(cloud, f"CASE#{case_id}", "CASE")
    assert {"password_hash", "token_generation"} <= set(user)
    assert {"notes", "summary", "steps"} <= set(case)

    # When every index is read
    indexes = _index_items(cloud)

    # Then the listings' partitions are there, and no entry carries a sensitive attribute
    partitions = {item["gsi1pk"]["S"] for item in indexes["gsi1"]}
    assert {"USERS", f"CASES#{alice.id}", f"JOBS#{alice.id}"} <= partitions
    assert {item["gsi2pk"]["S"] for item in indexes["gsi2"]} == {"CASES"}
    for name, items in indexes.items():
        for item in items:
            assert not SENSITIVE & set(item), (name, sorted(SENSITIVE & set(item)))
            assert not item["pk"]["S"].startswith("FAMILY#"), name

    # And the listings show what they showed before, read from the table by key
    users = cloud.request("GET", "/users", token=admin.access_token).body["items"]
    assert sorted(u["username"] for u in users) == ["alice", "root"]
    assert all("password_hash" not in u for u in users)
    mine = cloud.request("GET", "/cases").body["items"]
    everyone = cloud.request("GET", "/cases", token=admin.access_token).body["items"]
    assert [c["case_id"] for c in mine] == [c["case_id"] for c in everyone] == [case_id]
    assert mine[0] == cloud.request("GET", f"/cases/{case_id}").body  # summary, steps and all
    (job,) = cloud.request("GET", "/jobs").body["items"]
    assert (job["status"], job["result"]) == ("completed", "cba")
