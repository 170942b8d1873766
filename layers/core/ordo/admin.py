"""Account administration for a deployed stack, run with AWS credentials.

    python -m ordo.admin create-admin --table TABLE --username NAME --email EMAIL
    python -m ordo.admin rotate-signing-key [--private-parameter NAME] [--public-parameter NAME]

Creates the admin, or resets an existing admin of that name to active with a new password.
An existing account that is not an admin is promoted only with ``--force``. The password
comes from ``ORDO_ADMIN_PASSWORD`` or is asked for (never an argument, which would land in the
shell history).
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import TYPE_CHECKING, cast

from pydantic import ValidationError

from ordo.accounts import RegisterRequest, ensure_admin
from ordo.clock import utcnow
from ordo.errors import OrdoError
from ordo.http import describe_validation_errors

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient


def _password() -> str:
    if password := os.environ.get("ORDO_ADMIN_PASSWORD"):
        return password
    first = getpass.getpass("New admin password: ")
    if getpass.getpass("Again: ") != first:
        raise SystemExit("error: the passwords differ")
    return first


def ssm_client() -> SSMClient:
    """SSM with its whole model: ``aws.ssm()`` has GetParameter alone (``ordo.aws.TRIMMED``)."""
    from botocore.session import get_session

    return cast("SSMClient", get_session().create_client("ssm"))


def _rotate_signing_key(args: argparse.Namespace) -> int:
    """A new token signing key; the one it replaces stays accepted until its tokens expire."""
    from ordo.keyring import rotate_signing_key

    new, previous = rotate_signing_key(
        ssm_client(), private_name=args.private_parameter, public_name=args.public_parameter
    )
    if previous is None:
        print(f"created signing key {new.kid} ({args.private_parameter}, {args.public_parameter})")
    else:
        print(f"rotated: signing key {new.kid}; {previous.kid} stays accepted as the previous key")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ordo.admin")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create-admin", help="create or reset an admin account")
    create.add_argument(
        "--table",
        default=os.environ.get("ORDO_TABLE_NAME"),
        help="the stack's TableName output (default: $ORDO_TABLE_NAME)",
    )
    create.add_argument("--username", required=True)
    create.add_argument("--email", required=True)
    create.add_argument(
        "--force",
        action="store_true",
        help="promote an existing non-admin account (it gets admin rights and this password)",
    )
    rotate = commands.add_parser(
        "rotate-signing-key",
        help="make a new token signing key (the first run creates the keys)",
        description="Publish a new public key next to the current one, then make the new key "
        "the signing key (a new version of the SecureString). Older keys are dropped.",
    )
    rotate.add_argument(
        "--private-parameter",
        default=os.environ.get("ORDO_JWT_SIGNING_KEY_PARAMETER", "/ordo/jwt-signing-key"),
        help="the SecureString of the private key (the template's JwtSigningKeyParameterName)",
    )
    rotate.add_argument(
        "--public-parameter",
        default=os.environ.get("ORDO_JWT_PUBLIC_KEYS_PARAMETER", "/ordo/jwt-public-keys"),
        help="the String of the public keys (the template's JwtPublicKeysParameterName)",
    )
    args = parser.parse_args(argv)
    if args.command == "rotate-signing-key":
        return _rotate_signing_key(args)
    if not args.table:
        parser.error("--table (or ORDO_TABLE_NAME) is required")

    try:
        request = RegisterRequest(email=args.email, username=args.username, password=_password())
    except ValidationError as exc:
        print(f"error: {describe_validation_errors(exc.errors())}", file=sys.stderr)
        return 2

    from ordo import aws
    from ordo.storage.accounts import DynamoUserTable

    try:
        users = DynamoUserTable(aws.dynamodb(), args.table)
        admin, created = ensure_admin(users, request, utcnow(), force=args.force)
    except OrdoError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 1
    print(f"{'created' if created else 'reset'} admin {admin.username} ({admin.id})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
