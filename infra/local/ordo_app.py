"""What ordo's own template needs from the local cloud, beyond the generic emulator.

:class:`OrdoSetup` is ordo's :class:`~infra.local.cloud.StackSetup`: the token signing keys in
the two SSM parameters the template names, the first admin (``ORDO_ADMIN_*``), the private key
kept from every function but the signer, and the ``ORDO_*`` variables of the starting shell,
which override every function's template value. ``python -m infra.local`` passes it; a fixture
template runs without it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from infra.local.cloud import FORK_SERVER_VARIABLE, TIMEOUTS_VARIABLE

if TYPE_CHECKING:
    from infra.local.stack import Function, Stack
    from infra.local.startup import Step
    from ordo.accounts import RegisterRequest
    from ordo.tokens import SigningKey

SIGNING_KEY_PARAMETER = "JwtSigningKeyParameterName"
PUBLIC_KEYS_PARAMETER = "JwtPublicKeysParameterName"
SIGNING_KEY_VARIABLE = "ORDO_JWT_SIGNING_KEY_PARAMETER"  # names the private key: the signer's
PRIVATE_KEY_VARIABLE = "ORDO_JWT_SIGNING_KEY"  # a private JWK that fixes the signing key
# The local cloud's own settings, never a function's.
_NOT_OVERRIDES = {"ORDO_PORT", "ORDO_HOST", "ORDO_AWS_PORT", "ORDO_API_URL"}


def shell_overrides(environ: Mapping[str, str]) -> dict[str, str]:
    """``ORDO_*`` variables of the starting shell override every function's template value."""
    ignored = _NOT_OVERRIDES | {TIMEOUTS_VARIABLE, FORK_SERVER_VARIABLE}
    return {
        k: v
        for k, v in environ.items()
        if k.startswith("ORDO_") and k not in ignored and not k.startswith("ORDO_ADMIN_")
    }


def store_stack_signing_key(ssm: Any, stack: Stack, key: SigningKey) -> None:
    """``key`` in the two SSM parameters the stack's template names for the token keys."""
    from ordo.keyring import store_signing_key

    store_signing_key(
        ssm,
        key,
        private_name=stack.parameters[SIGNING_KEY_PARAMETER],
        public_name=stack.parameters[PUBLIC_KEYS_PARAMETER],
    )


@dataclass
class LocalAdmin:
    """The first admin: ``ORDO_ADMIN_USERNAME``/``ORDO_ADMIN_PASSWORD``, or a generated password
    shown in the banner. Never a default password."""

    username: str
    email: str
    password: str
    generated: bool

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> LocalAdmin:
        username = environ.get("ORDO_ADMIN_USERNAME", "admin")
        password = environ.get("ORDO_ADMIN_PASSWORD", "")
        return cls(
            username=username,
            email=environ.get("ORDO_ADMIN_EMAIL", f"{username}@example.com"),
            password=password or f"{secrets.token_urlsafe(12)}-Aa1",
            generated=not password,
        )

    @property
    def shown_password(self) -> str:
        return self.password if self.generated else "(password from ORDO_ADMIN_PASSWORD)"

    def request(self) -> RegisterRequest:
        """Raises ``ValueError`` naming the problem if the account details break the rules."""
        from pydantic import ValidationError

        from ordo.accounts import RegisterRequest

        try:
            return RegisterRequest(email=self.email, username=self.username, password=self.password)
        except ValidationError as exc:
            from ordo.http import describe_validation_errors  # FastAPI: only for the message

            problems = describe_validation_errors(exc.errors())
            raise ValueError(f"ORDO_ADMIN_* is not a valid account: {problems}") from exc

    def ensure(self, dynamodb: Any, table_name: str, request: RegisterRequest) -> None:
        """Create the admin (or restore it); raises ``ValueError`` as ``request`` does."""
        from ordo.accounts import ensure_admin
        from ordo.clock import utcnow
        from ordo.storage.accounts import DynamoUserTable

        users = DynamoUserTable(dynamodb, table_name)
        ensure_admin(users, request, utcnow())


@dataclass
class OrdoSetup:
    """ordo's :class:`~infra.local.cloud.StackSetup`. ``overrides`` are the shell's ``ORDO_*``
    (:func:`shell_overrides`), as the cloud's ``env_overrides`` holds them."""

    overrides: Mapping[str, str] = field(default_factory=dict)
    admin: LocalAdmin = field(default_factory=lambda: LocalAdmin.from_env({}))

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> OrdoSetup:
        return cls(shell_overrides(environ), LocalAdmin.from_env(environ))

    def prepare_environment(
        self, function: Function, environment: dict[str, str]
    ) -> dict[str, str]:
        """The shell's private key (``ORDO_JWT_SIGNING_KEY``) only for the function that signs."""
        if not self.waits_for_setup(function):
            if PRIVATE_KEY_VARIABLE in function.environment:  # the template's own value stays
                environment[PRIVATE_KEY_VARIABLE] = function.environment[PRIVATE_KEY_VARIABLE]
            else:
                environment.pop(PRIVATE_KEY_VARIABLE, None)
        return environment

    def waits_for_setup(self, function: Function) -> bool:
        """The signer (its environment names the signing key) needs the keys in SSM."""
        return SIGNING_KEY_VARIABLE in function.environment

    def after_resources(
        self, stack: Stack, client: Callable[[str], Any], *, serving: bool
    ) -> list[Step]:
        """The token keys, and the admin when the gateway serves. The admin's details are
        checked now, so that a bad ``ORDO_ADMIN_*`` stops the start with a clear error."""
        if SIGNING_KEY_PARAMETER not in stack.parameters:  # not ordo's template
            return []
        steps: list[Step] = [("signing keys", lambda: self._store_signing_key(stack, client))]
        if serving:
            request = self.admin.request()
            table = stack.physical["JobsTable"]["Ref"]
            steps.append(("admin", lambda: self.admin.ensure(client("dynamodb"), table, request)))
        return steps

    def banner_lines(self, stack: Stack) -> list[str]:
        if SIGNING_KEY_PARAMETER not in stack.parameters:
            return []
        return [f"  Admin       {self.admin.username} / {self.admin.shown_password}"]

    def _store_signing_key(self, stack: Stack, client: Callable[[str], Any]) -> None:
        """As deployed: the private key in a SecureString (the Auth function reads it) and the
        public keys in a String (every API function reads them). A fresh key per start, so
        tokens never outlive the local cloud; ``ORDO_JWT_SIGNING_KEY`` (a private JWK) fixes it."""
        from ordo.tokens import SigningKey

        given = self.overrides.get(PRIVATE_KEY_VARIABLE)
        key = SigningKey.from_jwk(given) if given else SigningKey.generate()
        store_stack_signing_key(client("ssm"), stack, key)
