"""Passwords: argon2id at RFC 9106's low-memory cost (tests elsewhere run a cheaper argon2id)."""

import pytest

from ordo import security


def test_the_functions_hash_with_argon2id_at_rfc_9106_low_memory_cost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.undo()  # the suite's cheap hasher (tests/conftest.py)
    hashed = security.hash_password("correct horse")

    assert hashed.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert security.verify_password(hashed, "correct horse")
    assert not security.verify_password(hashed, "wrong horse")


def test_the_suites_cheap_hash_is_still_argon2id_and_checks_the_password() -> None:
    hashed = security.hash_password("correct horse")

    assert hashed.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert security.verify_password(hashed, "correct horse")
    assert not security.verify_password(hashed, "wrong horse")
    assert not security.verify_password("not a hash", "correct horse")
