"""Publishes the console (``web/``) to a deployed stack: ``make deploy-console``.

``python -m infra.console --stack-name NAME [--region R]`` reads the stack's outputs, uploads
the console's files to its private bucket (``ConsoleBucketName``) with their Content-Type and
Cache-Control, writes ``config.json`` with the API's URL (``ApiUrl``), deletes what ``web/`` no
longer has, and invalidates the CloudFront distribution (``ConsoleDistributionId``).

``web/`` needs no build step: its files are the app. Only the test and documentation tooling
(``node_modules``, ``package.json``, ``package-lock.json``, ``tests``) and dotfiles stay behind.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_cloudfront import CloudFrontClient
    from mypy_boto3_s3 import S3Client

ROOT = Path(__file__).resolve().parents[1]
WEB = ROOT / "web"
SAMCONFIG = ROOT / "samconfig.toml"

CONFIG_KEY = "config.json"
# Build and test inputs, never served (the local cloud refuses the same names).
PRIVATE = frozenset({"node_modules", "package.json", "package-lock.json", "tests"})
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".webmanifest": "application/manifest+json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".txt": "text/plain; charset=utf-8",
}
# The pages and the settings are revalidated on every load, so a deploy shows at once. The
# modules they load have no content hash in their names: a short max-age, not immutable.
NO_CACHE = "no-cache"
SHORT_CACHE = "public, max-age=300"
OUTPUTS = ("ConsoleBucketName", "ConsoleDistributionId", "ApiUrl")


class ConsoleError(Exception):
    """A reason the console cannot be published, told in one line."""


def content_type(path: Path) -> str:
    kind = CONTENT_TYPES.get(path.suffix.lower())
    if kind is None:
        raise ConsoleError(f"{path}: no Content-Type known for {path.suffix or 'no suffix'!r}")
    return kind


def cache_control(key: str) -> str:
    return NO_CACHE if key == CONFIG_KEY or key.endswith(".html") else SHORT_CACHE


def is_console_path(parts: Sequence[str]) -> bool:
    """Whether ``web/<parts>`` is part of the console: no dotfile, no build or test input.
    The local cloud serves by the same rule."""
    if not parts or any(part.startswith(".") for part in parts):
        return False
    return parts[0] not in PRIVATE and "node_modules" not in parts


def console_files(web_dir: Path) -> Iterator[tuple[str, Path]]:
    """Every file to serve, as (object key, path)."""
    for path in sorted(web_dir.rglob("*")):
        parts = path.relative_to(web_dir).parts
        if not is_console_path(parts) or not path.is_file():
            continue
        key = "/".join(parts)
        if key == CONFIG_KEY:  # written from the stack below, never copied
            continue
        yield key, path


def config_json(api_url: str) -> bytes:
    return (json.dumps({"apiBase": api_url.rstrip("/")}, indent=2) + "\n").encode()


def publish(s3_client: S3Client, bucket: str, web_dir: Path, api_url: str) -> list[str]:
    """Upload the console and its config.json; remove objects web_dir no longer has.

    Pages go last, so a browser that loads a new page finds the files it names. Returns the
    keys written, in the order they were written.
    """
    files = list(console_files(web_dir))
    if "index.html" not in dict(files):
        raise ConsoleError(f"{web_dir / 'index.html'} not found: there is no console to publish")
    kinds = {key: content_type(path) for key, path in files}  # every type known, before writing
    files.sort(key=lambda item: item[0].endswith(".html"))
    s3_client.put_object(
        Bucket=bucket,
        Key=CONFIG_KEY,
        Body=config_json(api_url),
        ContentType=CONTENT_TYPES[".json"],
        CacheControl=cache_control(CONFIG_KEY),
    )
    written = [CONFIG_KEY]
    for key, path in files:
        s3_client.put_object(
            Bucket=bucket,
            Key=key,
            Body=path.read_bytes(),
            ContentType=kinds[key],
            CacheControl=cache_control(key),
        )
        written.append(key)
    _delete_all_but(s3_client, bucket, set(written))
    return written


def _delete_all_but(s3_client: S3Client, bucket: str, keep: set[str]) -> None:
    stale: list[str] = []
    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        stale += [obj["Key"] for obj in page.get("Contents", []) if obj["Key"] not in keep]
    for start in range(0, len(stale), 1000):
        batch = stale[start : start + 1000]
        s3_client.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True}
        )


def stack_outputs(cloudformation: CloudFormationClient, stack_name: str) -> dict[str, str]:
    """The outputs the console needs, or a ConsoleError saying what is missing."""
    from botocore.exceptions import ClientError

    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        reason = error.response.get("Error", {})
        gone = "does not exist" in reason.get("Message", "")
        if reason.get("Code") == "ValidationError" and gone:
            region = cloudformation.meta.region_name
            raise ConsoleError(
                f"stack {stack_name!r} not found in {region}: run `make deploy` first, "
                "or pass STACK=<name> (and REGION=<region>)"
            ) from None
        raise
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    missing = [name for name in OUTPUTS if not outputs.get(name)]
    if missing:
        raise ConsoleError(
            f"stack {stack_name!r} has no output {', '.join(missing)}: "
            "deploy the current template.yaml (make deploy) first"
        )
    return outputs


@dataclass(frozen=True)
class Published:
    bucket: str
    keys: list[str]
    distribution_id: str
    invalidation_id: str
    url: str | None


def deploy(
    stack_name: str,
    cloudformation: CloudFormationClient,
    s3_client: S3Client,
    cloudfront: CloudFrontClient,
    web_dir: Path = WEB,
) -> Published:
    outputs = stack_outputs(cloudformation, stack_name)
    bucket, distribution = outputs["ConsoleBucketName"], outputs["ConsoleDistributionId"]
    keys = publish(s3_client, bucket, web_dir, outputs["ApiUrl"])
    invalidation = cloudfront.create_invalidation(
        DistributionId=distribution,
        InvalidationBatch={
            "Paths": {"Quantity": 1, "Items": ["/*"]},
            "CallerReference": f"ordo-console-{time.time_ns()}",
        },
    )
    return Published(
        bucket, keys, distribution, invalidation["Invalidation"]["Id"], outputs.get("ConsoleUrl")
    )


def samconfig_region(path: Path = SAMCONFIG) -> str | None:
    """The region `sam deploy --guided` saved, if it saved one."""
    if not path.is_file():
        return None
    config = tomllib.loads(path.read_text()).get("default", {})
    for command in ("deploy", "global"):
        region = config.get(command, {}).get("parameters", {}).get("region")
        if isinstance(region, str) and region:
            return region
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.console",
        description="Upload web/ to a deployed stack's console bucket and write config.json.",
    )
    parser.add_argument("--stack-name", required=True, help="the deployed stack (samconfig.toml)")
    parser.add_argument(
        "--region", help="the stack's region (default: samconfig.toml's, then the AWS config's)"
    )
    args = parser.parse_args(argv)

    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        session = boto3.Session(region_name=args.region or samconfig_region())
        done = deploy(
            args.stack_name,
            session.client("cloudformation"),
            session.client("s3"),
            session.client("cloudfront"),
        )
    except (ConsoleError, BotoCoreError, ClientError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(
        f"published {len(done.keys)} files to s3://{done.bucket}; invalidating /* on "
        f"{done.distribution_id} ({done.invalidation_id})"
    )
    if done.url:
        print(f"console: {done.url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
