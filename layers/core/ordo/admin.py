"""Account administration for a deployed stack, run with AWS credentials.

    python -m ordo.admin create-admin --table TABLE --username NAME --email EMAIL

Creates the admin, or resets an existing user of that name to an active admin with a new
password. The password comes from ``ORDO_ADMIN_PASSWORD`` or is asked for (never an argument,
which would land in the shell history).
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from pydantic import ValidationError

from ordo.accounts import RegisterRequest, ensure_admin
from ordo.clock import utcnow
from ordo.errors import OrdoError
from ordo.http import describe_validation_errors


def _password() -> str:
    if password := os.environ.get("ORDO_ADMIN_PASSWORD"):
        return password
    first = getpass.getpass("New admin password: ")
    if getpass.getpass("Again: ") != first:
        raise SystemExit("error: the passwords differ")
    return first


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
    args = parser.parse_args(argv)
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
        admin, created = ensure_admin(users, request, utcnow())
    except OrdoError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 1
    print(f"{'created' if created else 'reset'} admin {admin.username} ({admin.id})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
