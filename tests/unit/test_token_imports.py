"""The verifier's cold path: no API function imports pyjwt, and verifying imports only ed25519.

pyjwt, once cryptography is installed, imports every algorithm cryptography has (~27 ms of
each cold start); the layer is shared, so only the Auth function may pay for it.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from infra.local.stack import Stack
from ordo.tokens import SigningKey, TokenType, issue_token
from tests.probe import run_probe

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers" / "core"
FUNCTIONS = Stack.load().functions()
API_FUNCTIONS = sorted(lid for lid, fn in FUNCTIONS.items() if fn.http_routes)

# A cold start up to the user lookup: import the handler module, then verify a bearer token
# the way ``ordo.deps.authenticated_user`` does (the public keys given in the environment).
COLD_PATH = """\
import json, sys
from datetime import datetime, UTC
import app
from ordo.tokens import TokenType
from ordo.wiring import token_verifier
assert token_verifier().verify(sys.argv[1], TokenType.ACCESS, datetime.now(UTC)).sub == "u"
print(json.dumps(sorted(sys.modules)))
"""


def _modules_after(code: str, cwd: Path, *args: str, env: dict[str, str] | None = None) -> set[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ORDO_")}
    environment |= (env or {}) | {"PYTHONPATH": os.pathsep.join([str(cwd), str(LAYER)])}
    return set(run_probe(code, *args, cwd=cwd, env=environment))


@pytest.mark.parametrize("function", API_FUNCTIONS)
def test_no_api_function_imports_jwt_on_its_cold_path(function: str) -> None:
    key = SigningKey.generate()
    token, _ = issue_token(
        key,
        "u",
        "user",
        TokenType.ACCESS,
        now=datetime.now(UTC),
        lifetime=timedelta(minutes=5),
        generation=0,
        family="f",
    )
    definition = FUNCTIONS[function]
    env = definition.environment | {
        "ORDO_JWT_PUBLIC_KEYS": key.public_keys().to_jwks(),
        "ORDO_JWT_ISSUER": "ordo",
        "ORDO_JWT_AUDIENCE": "ordo-api",
    }
    modules = _modules_after(COLD_PATH, definition.code_uri, token, env=env)
    assert "app" in modules
    assert {m for m in modules if m == "jwt" or m.startswith("jwt.")} == set()
    # Of cryptography's algorithms, verifying loads ed25519 alone
    assert "cryptography.hazmat.primitives.asymmetric.ed25519" in modules
    other_algorithms = {"rsa", "ec", "dsa", "ed448", "x25519", "x448", "dh", "padding"}
    loaded = {m.rsplit(".", 1)[-1] for m in modules if ".asymmetric." in m}
    assert loaded & other_algorithms == set()
