"""infra.console: the console's files in S3 (moto), as CloudFront will serve them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto import mock_aws

from infra import console

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_cloudfront import CloudFrontClient
    from mypy_boto3_s3 import S3Client

BUCKET = "ordo-console-bucket"
API_URL = "https://abc123.execute-api.us-east-1.amazonaws.com"
SHIPPED = {
    "index.html": "<!doctype html><script type=module src=app.js></script>",
    "app.js": "import './js/api.js';",
    "js/api.js": "export const x = 1;",
    "styles/console.css": "body { margin: 0 }",
    "icons/logo.svg": "<svg xmlns='http://www.w3.org/2000/svg'/>",
    "favicon.ico": "ico",
    "img/empty.png": "png",
    "fonts/inter.woff2": "woff2",
    "data/kinds.json": "[]",
}
NOT_SHIPPED = {
    "package.json": "{}",
    "package-lock.json": "{}",
    ".npmrc": "x",
    ".hidden/secret.js": "x",
    "js/.draft.js": "x",
    "node_modules/redoc/bundles/redoc.standalone.js": "x",
    "js/node_modules/left-pad/index.js": "x",
    "tests/api.test.js": "x",
    "config.json": '{"apiBase": ""}',  # the local cloud's; the stack's replaces it
}


@pytest.fixture
def web(tmp_path: Path) -> Path:
    root = tmp_path / "web"
    for name, text in (SHIPPED | NOT_SHIPPED).items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture
def s3() -> Iterator[S3Client]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def _objects(s3: S3Client) -> dict[str, dict[str, Any]]:
    keys = [obj["Key"] for obj in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    return {key: dict(s3.get_object(Bucket=BUCKET, Key=key)) for key in keys}


def test_publish_uploads_the_app_and_nothing_else(s3: S3Client, web: Path) -> None:
    written = console.publish(s3, BUCKET, web, API_URL)

    assert sorted(_objects(s3)) == sorted([*SHIPPED, "config.json"])
    assert sorted(written) == sorted([*SHIPPED, "config.json"])
    assert written[-1] == "index.html"  # the page last, after the files it loads
    for key, text in SHIPPED.items():
        assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode() == text, key


def test_each_file_has_its_content_type(s3: S3Client, web: Path) -> None:
    console.publish(s3, BUCKET, web, API_URL)
    types = {key: obj["ContentType"] for key, obj in _objects(s3).items()}

    assert types == {
        "index.html": "text/html; charset=utf-8",
        "app.js": "text/javascript; charset=utf-8",
        "js/api.js": "text/javascript; charset=utf-8",
        "styles/console.css": "text/css; charset=utf-8",
        "icons/logo.svg": "image/svg+xml",
        "favicon.ico": "image/x-icon",
        "img/empty.png": "image/png",
        "fonts/inter.woff2": "font/woff2",
        "data/kinds.json": "application/json",
        "config.json": "application/json",
    }


def test_pages_and_config_are_revalidated_and_the_rest_cached_briefly(
    s3: S3Client, web: Path
) -> None:
    console.publish(s3, BUCKET, web, API_URL)
    cache = {key: obj["CacheControl"] for key, obj in _objects(s3).items()}

    assert cache.pop("index.html") == "no-cache"
    assert cache.pop("config.json") == "no-cache"
    assert set(cache.values()) == {"public, max-age=300"}


def test_config_json_points_the_console_at_the_api(s3: S3Client, web: Path) -> None:
    console.publish(s3, BUCKET, web, API_URL + "/")
    body = s3.get_object(Bucket=BUCKET, Key="config.json")["Body"].read()

    assert json.loads(body) == {"apiBase": API_URL}


def test_a_second_publish_removes_what_web_no_longer_has(s3: S3Client, web: Path) -> None:
    console.publish(s3, BUCKET, web, API_URL)
    (web / "js" / "api.js").unlink()

    console.publish(s3, BUCKET, web, API_URL)

    assert "js/api.js" not in _objects(s3)
    assert "app.js" in _objects(s3)


def test_publish_refuses_a_folder_without_index_html(s3: S3Client, web: Path) -> None:
    (web / "index.html").unlink()

    with pytest.raises(console.ConsoleError, match=r"index\.html not found"):
        console.publish(s3, BUCKET, web, API_URL)
    assert _objects(s3) == {}


def test_publish_refuses_a_file_of_unknown_type_before_writing(s3: S3Client, web: Path) -> None:
    (web / "notes.xyz").write_text("?")

    with pytest.raises(console.ConsoleError, match=r"no Content-Type known for '\.xyz'"):
        console.publish(s3, BUCKET, web, API_URL)
    assert _objects(s3) == {}


# --- deploy: the stack's outputs, the upload, the invalidation ------------------------------


class Aws:
    def __init__(self) -> None:
        self.s3: S3Client = boto3.client("s3", region_name="us-east-1")
        self.cloudformation: CloudFormationClient = boto3.client(
            "cloudformation", region_name="us-east-1"
        )
        self.cloudfront: CloudFrontClient = boto3.client("cloudfront", region_name="us-east-1")

    def distribution(self) -> str:
        created = self.cloudfront.create_distribution(
            DistributionConfig={
                "CallerReference": "console",
                "Comment": "",
                "Enabled": True,
                "Origins": {
                    "Quantity": 1,
                    "Items": [
                        {
                            "Id": "console-bucket",
                            "DomainName": f"{BUCKET}.s3.us-east-1.amazonaws.com",
                            "S3OriginConfig": {"OriginAccessIdentity": ""},
                        }
                    ],
                },
                "DefaultCacheBehavior": {
                    "TargetOriginId": "console-bucket",
                    "ViewerProtocolPolicy": "redirect-to-https",
                    "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6",
                },
            }
        )
        return created["Distribution"]["Id"]

    def stack(self, name: str, outputs: dict[str, str]) -> None:
        template = {
            "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
            "Outputs": {key: {"Value": value} for key, value in outputs.items()},
        }
        self.cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template))


@pytest.fixture
def aws() -> Iterator[Aws]:
    with mock_aws():
        cloud = Aws()
        cloud.s3.create_bucket(Bucket=BUCKET)
        yield cloud


def test_deploy_publishes_to_the_stacks_bucket_and_invalidates_everything(
    aws: Aws, web: Path
) -> None:
    distribution = aws.distribution()
    aws.stack(
        "ordo",
        {
            "ConsoleBucketName": BUCKET,
            "ConsoleDistributionId": distribution,
            "ApiUrl": API_URL,
            "ConsoleUrl": "https://d111.cloudfront.net",
        },
    )

    done = console.deploy("ordo", aws.cloudformation, aws.s3, aws.cloudfront, web)

    assert (done.bucket, done.distribution_id) == (BUCKET, distribution)
    assert done.url == "https://d111.cloudfront.net"
    body = aws.s3.get_object(Bucket=BUCKET, Key="config.json")["Body"].read()
    assert json.loads(body) == {"apiBase": API_URL}
    invalidation = aws.cloudfront.get_invalidation(
        DistributionId=distribution, Id=done.invalidation_id
    )["Invalidation"]
    assert invalidation["InvalidationBatch"]["Paths"]["Items"] == ["/*"]


def test_a_missing_stack_is_one_clear_error(aws: Aws, web: Path) -> None:
    with pytest.raises(console.ConsoleError, match=r"stack 'nope' not found in us-east-1"):
        console.deploy("nope", aws.cloudformation, aws.s3, aws.cloudfront, web)


def test_a_stack_without_the_console_outputs_is_one_clear_error(aws: Aws, web: Path) -> None:
    aws.stack("old", {"ApiUrl": API_URL})

    with pytest.raises(
        console.ConsoleError,
        match=r"stack 'old' has no output ConsoleBucketName, ConsoleDistributionId",
    ):
        console.deploy("old", aws.cloudformation, aws.s3, aws.cloudfront, web)
    assert _objects(aws.s3) == {}


def test_main_says_what_is_wrong_in_one_line_and_exits_nonzero(
    aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    code = console.main(["--stack-name", "nope", "--region", "us-east-1"])

    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: stack 'nope' not found in us-east-1")
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_the_region_comes_from_samconfig_when_not_given(tmp_path: Path) -> None:
    config = tmp_path / "samconfig.toml"
    config.write_text('version = 0.1\n[default.deploy.parameters]\nregion = "eu-west-1"\n')

    assert console.samconfig_region(config) == "eu-west-1"
    assert console.samconfig_region(tmp_path / "missing.toml") is None
    config.write_text('version = 0.1\n[default.global.parameters]\nstack_name = "ordo"\n')
    assert console.samconfig_region(config) is None
