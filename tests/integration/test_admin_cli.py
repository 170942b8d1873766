"""``python -m ordo.admin create-admin``: the first admin of a deployed stack."""

import pytest

from ordo.admin import main
from tests.harness import PASSWORD, InProcessStack

NEW_PASSWORD = "Fresh-passw0rd"


def create_admin(cloud: InProcessStack, username: str, *extra: str) -> int:
    table = cloud.stack.physical["JobsTable"]["Ref"]
    return main(
        [
            "create-admin",
            "--table",
            table,
            "--username",
            username,
            "--email",
            f"{username}@example.com",
            *extra,
        ]
    )


def test_creates_an_admin_who_can_sign_in(
    anonymous_cloud: InProcessStack,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("ORDO_ADMIN_PASSWORD", NEW_PASSWORD)
    assert create_admin(anonymous_cloud, "boss") == 0
    assert "created admin boss" in capsys.readouterr().out

    boss = anonymous_cloud.sign_in("boss", NEW_PASSWORD)
    assert anonymous_cloud.request("GET", "/users", token=boss.access_token).status == 200


def test_an_existing_user_is_promoted_only_with_force(
    anonymous_cloud: InProcessStack,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    zed = anonymous_cloud.sign_up("zed")
    monkeypatch.setenv("ORDO_ADMIN_PASSWORD", NEW_PASSWORD)
    assert create_admin(anonymous_cloud, "zed") == 1
    refused = capsys.readouterr().err
    assert "zed is an existing account without the admin role" in refused
    assert "--force" in refused
    unchanged = anonymous_cloud.sign_in("zed")  # the old password still works
    me = anonymous_cloud.request("GET", "/auth/me", token=unchanged.access_token).body
    assert me["role"] == "user"

    assert create_admin(anonymous_cloud, "zed", "--force") == 0
    assert "reset admin zed" in capsys.readouterr().out
    old = {"username": "zed", "password": PASSWORD}
    assert anonymous_cloud.request("POST", "/auth/login/json", old, token=None).status == 401
    again = anonymous_cloud.sign_in("zed", NEW_PASSWORD)
    assert again.id == zed.id
    me = anonymous_cloud.request("GET", "/auth/me", token=again.access_token).body
    assert (me["role"], me["is_active"]) == ("admin", True)


def test_an_existing_admin_is_reset_without_force(
    anonymous_cloud: InProcessStack,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    boss = anonymous_cloud.sign_up("boss", admin=True)
    monkeypatch.setenv("ORDO_ADMIN_PASSWORD", NEW_PASSWORD)
    assert create_admin(anonymous_cloud, "boss") == 0
    assert "reset admin boss" in capsys.readouterr().out
    assert anonymous_cloud.sign_in("boss", NEW_PASSWORD).id == boss.id


def test_a_password_that_breaks_the_rules_is_refused(
    anonymous_cloud: InProcessStack,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("ORDO_ADMIN_PASSWORD", "password")
    assert create_admin(anonymous_cloud, "weak") == 2
    assert "upper-case" in capsys.readouterr().err
    login = {"username": "weak", "password": "password"}
    assert anonymous_cloud.request("POST", "/auth/login/json", login, token=None).status == 401


def test_the_table_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ORDO_TABLE_NAME", raising=False)
    with pytest.raises(SystemExit) as exited:
        main(["create-admin", "--username", "x", "--email", "x@example.com"])
    assert exited.value.code == 2
