"""Reads template.yaml through the SAM transform and makes its tables and queues in moto.

What the template says is what runs: keys, GSIs, TTL, FIFO flags, visibility timeouts, redrive
policies, function handlers, timeouts, reserved concurrency, environment and event sources all
come from the transformed (plain CloudFormation) template, with intrinsics resolved to local
names.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
ACCOUNT = "123456789012"
# Local code folders travel through the SAM transform as s3://local/<folder>.
LOCAL_BUCKET = "local"


class _NoManagedPolicies:
    """SAM only asks this for policies named without an ARN, which ordo's template never uses."""

    def load(self) -> dict[str, str]:
        return {}


CACHE = ROOT / ".ordo" / "cache"
CACHE_KEPT = 8  # transformed templates kept: the most recently used


def transformed_template(
    path: Path = TEMPLATE, region: str = "us-east-1", cache: Path = CACHE
) -> dict[str, Any]:
    """The template as CloudFormation sees it after ``Transform: AWS::Serverless``.

    The transform takes over a second, so its output is cached by the template's content, the
    region and the translator's version: a second start of the local cloud skips it. Each
    writer writes a file of its own and renames it into place, so processes starting at once
    never see a partial one; an unreadable entry is a miss.
    """
    import hashlib
    from importlib.metadata import version

    source = path.read_bytes()
    key = hashlib.sha256(
        source + region.encode() + version("aws-sam-translator").encode()
    ).hexdigest()[:24]
    cached = cache / f"template-{key}.json"
    try:
        loaded: dict[str, Any] = json.loads(cached.read_bytes())
    except (OSError, ValueError):
        pass  # not cached yet, or a damaged entry: transform again and replace it
    else:
        with contextlib.suppress(OSError):
            os.utime(cached)  # recently used: kept by the pruning
        return loaded
    translated = _transform(source.decode(), region)
    _store(cache, cached, translated)
    return translated


def _store(cache: Path, cached: Path, translated: dict[str, Any]) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", dir=cache, prefix=f"{cached.stem}-", suffix=".tmp", delete=False
    ) as partial:
        try:
            json.dump(translated, partial)
        except BaseException:
            Path(partial.name).unlink(missing_ok=True)
            raise
    os.replace(partial.name, cached)
    entries = sorted(cache.glob("template-*.json"), key=_modified, reverse=True)
    for stale in entries[CACHE_KEPT:]:
        stale.unlink(missing_ok=True)


def _modified(entry: Path) -> float:
    try:
        return entry.stat().st_mtime
    except OSError:  # removed meanwhile by another start
        return 0.0


def _transform(source: str, region: str) -> dict[str, Any]:
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator
    from samtranslator.yaml_helper import yaml_parse

    sam = yaml_parse(source)
    for resource in sam.get("Resources", {}).values():
        props = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(props.get(key), str) and not props[key].startswith("s3://"):
                props[key] = f"s3://{LOCAL_BUCKET}/{props[key].rstrip('/')}"
    translator = Translator(None, Parser(), boto_session=boto3.Session(region_name=region))
    policies = _NoManagedPolicies()
    translated: dict[str, Any] = translator.translate(
        sam, parameter_values={}, get_managed_policy_map=policies.load
    )
    return translated


@dataclass
class Function:
    logical_id: str
    code_uri: Path
    handler: str
    timeout: int
    memory: int
    reserved_concurrency: int | None
    environment: dict[str, str]
    layers: list[Path] = field(default_factory=list)
    http_routes: list[tuple[str, str]] = field(default_factory=list)
    queue_logical_id: str | None = None
    batch_size: int = 10
    report_batch_item_failures: bool = False


# API Gateway's default account limits per Region: what a stage or route limit left out means.
ACCOUNT_RATE_LIMIT = 10_000.0
ACCOUNT_BURST_LIMIT = 5_000
# ``--parameter-overrides`` that lift ordo's template throttle to those limits: for test suites
# and benches that call one route far faster than the template allows.
ACCOUNT_LIMIT_OVERRIDES = [
    f"ApiThrottlingRateLimit={ACCOUNT_RATE_LIMIT:g}",
    f"ApiThrottlingBurstLimit={ACCOUNT_BURST_LIMIT}",
]


@dataclass(frozen=True)
class Throttle:
    """An API Gateway throttle: a token bucket of ``burst`` tokens refilled at ``rate`` a second."""

    rate: float
    burst: int

    def __post_init__(self) -> None:
        if not (0 <= self.rate < float("inf")) or self.burst < 0:
            raise ValueError(f"a throttle needs a finite rate and burst >= 0, not {self}")


@dataclass(frozen=True)
class Throttling:
    """The HttpApi stage's throttles: ``default`` for every route (DefaultRouteSettings), and
    the routes that override it (RouteSettings, by route key such as ``GET /health``)."""

    default: Throttle | None = None
    routes: dict[str, Throttle] = field(default_factory=dict)

    def for_route(self, route_key: str) -> Throttle | None:
        return self.routes.get(route_key, self.default)


@dataclass
class Stack:
    """The template's resources, resolved for one region and account."""

    name: str
    region: str
    template: dict[str, Any]
    parameters: dict[str, str]
    base: Path = ROOT
    physical: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def load(
        cls,
        name: str = "ordo",
        region: str = "us-east-1",
        overrides: dict[str, str] | None = None,
        path: Path = TEMPLATE,
    ) -> Stack:
        template = transformed_template(path, region)
        defaults = {
            key: str(spec.get("Default", ""))
            for key, spec in template.get("Parameters", {}).items()
        }
        unknown = sorted(set(overrides or {}) - set(defaults))
        if unknown:
            raise ValueError(f"the template has no parameter {', '.join(unknown)}")
        stack = cls(name, region, template, defaults | (overrides or {}), path.resolve().parent)
        stack._name_resources()
        return stack

    # --- resources ---------------------------------------------------------------------

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.template["Resources"]  # type: ignore[no-any-return]

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {lid: res for lid, res in self.resources.items() if res["Type"] == kind}

    def _name_resources(self) -> None:
        base = f"arn:aws:{{}}:{self.region}:{ACCOUNT}:{{}}"
        for lid in self.of_type("AWS::DynamoDB::Table"):
            name = f"{self.name}-{lid}"
            self.physical[lid] = {"Ref": name, "Arn": base.format("dynamodb", f"table/{name}")}
        for lid, res in self.of_type("AWS::SQS::Queue").items():
            fifo = self.resolve(res["Properties"].get("FifoQueue", False)) in (True, "true")
            name = f"{self.name}-{lid}" + (".fifo" if fifo else "")
            url = f"https://sqs.{self.region}.amazonaws.com/{ACCOUNT}/{name}"
            arn = base.format("sqs", name)
            self.physical[lid] = {"Ref": url, "Arn": arn, "QueueName": name, "QueueUrl": url}
        for lid in self.of_type("AWS::Lambda::Function"):
            name = f"{self.name}-{lid}"
            arn = base.format("lambda", f"function:{name}")
            self.physical[lid] = {"Ref": name, "Arn": arn}
        for lid in self.of_type("AWS::ApiGatewayV2::Api"):
            self.physical[lid] = {"Ref": "local", "ApiEndpoint": "http://127.0.0.1"}
        for lid in self.resources:
            self.physical.setdefault(lid, {"Ref": f"{self.name}-{lid}", "Arn": f"{lid}-arn"})

    # --- intrinsics ----------------------------------------------------------------------

    def resolve(self, value: Any) -> Any:  # noqa: PLR0911 - one branch per intrinsic
        """Resolve the intrinsic functions ordo's template uses to local values."""
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((fn, arg),) = value.items()
            if fn == "Ref":
                return self._ref(arg)
            if fn == "Fn::GetAtt":
                lid, attr = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.physical[lid][attr]
            if fn == "Fn::Sub":
                return self._sub(arg)
            if fn == "Fn::If":
                condition, then, otherwise = arg
                return self.resolve(then if self._condition(condition) else otherwise)
            if fn == "Fn::Join":
                separator, items = arg
                return separator.join(str(self.resolve(item)) for item in items)
            if fn == "Fn::Equals":
                left, right = (self.resolve(item) for item in arg)
                return str(left) == str(right)
            if fn == "Fn::Not":
                (condition,) = arg
                return not self.resolve(condition)
        return {key: self.resolve(item) for key, item in value.items()}

    def _ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": ACCOUNT,
            "AWS::StackName": self.name,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": None,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        return self.physical[name]["Ref"]

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else arg

        def replace(match: re.Match[str]) -> str:
            token = match.group(1)
            if token in variables:
                return str(self.resolve(variables[token]))
            if "." in token and not token.startswith("AWS::"):
                lid, attr = token.split(".", 1)
                return str(self.physical[lid][attr])
            return str(self._ref(token))

        return re.sub(r"\$\{([^}!]+)\}", replace, text)

    def _condition(self, name: str) -> bool:
        return bool(self.resolve(self.template["Conditions"][name]))

    # --- the API's stage ------------------------------------------------------------------

    def throttling(self) -> Throttling:
        """The throttles of the HttpApi's stage, resolved (the template's parameters included).
        A setting a route leaves out is the default route's. The local cloud serves every
        HttpApi's routes on one port, so it throttles a template of one HttpApi only: with two
        or more, any stage throttle is a ``ValueError``."""
        default: dict[str, Any] = {}
        routes: dict[str, dict[str, Any]] = {}
        apis = sorted(self.of_type("AWS::ApiGatewayV2::Api"))
        for lid, res in self.of_type("AWS::ApiGatewayV2::Stage").items():
            props = self.resolve(res["Properties"])
            throttled = any(
                _throttle(settings)
                for settings in [
                    props.get("DefaultRouteSettings") or {},
                    *(props.get("RouteSettings") or {}).values(),
                ]
            )
            if throttled and len(apis) > 1:
                raise ValueError(
                    f"the stage {lid} sets throttles, but the local cloud throttles a template "
                    f"of one HttpApi only; this one has {len(apis)}: {', '.join(apis)}"
                )
            default |= props.get("DefaultRouteSettings") or {}
            for key, settings in (props.get("RouteSettings") or {}).items():
                routes[key] = routes.get(key, {}) | settings
        return Throttling(
            default=_throttle(default),
            routes={
                key: throttle
                for key, settings in routes.items()
                if (throttle := _throttle(default | settings))
            },
        )

    # --- functions -----------------------------------------------------------------------

    def functions(self) -> dict[str, Function]:
        functions: dict[str, Function] = {}
        for lid, res in self.of_type("AWS::Lambda::Function").items():
            props = self.resolve(res["Properties"])
            env = (props.get("Environment") or {}).get("Variables") or {}
            functions[lid] = Function(
                logical_id=lid,
                code_uri=self._code_uri(lid),
                handler=props["Handler"],
                timeout=int(props.get("Timeout", 3)),
                memory=int(props.get("MemorySize", 128)),
                reserved_concurrency=(
                    int(props["ReservedConcurrentExecutions"])
                    if "ReservedConcurrentExecutions" in props
                    else None
                ),
                environment={key: str(value) for key, value in env.items()},
                layers=self._layers(res["Properties"].get("Layers", [])),
            )
        self._attach_routes(functions)
        self._attach_event_sources(functions)
        return functions

    def _layers(self, refs: list[Any]) -> list[Path]:
        """Each layer's source folder; a python layer's packages sit at its top level."""
        folders = []
        for ref in refs:
            lid = ref.get("Ref") if isinstance(ref, dict) else None
            layer = self.resources.get(str(lid), {})
            if layer.get("Type") == "AWS::Lambda::LayerVersion":
                folders.append(self.base / str(layer["Properties"]["Content"]["S3Key"]))
        return folders

    def _code_uri(self, lid: str) -> Path:
        code = self.resources[lid]["Properties"]["Code"]
        return self.base / str(code["S3Key"])

    def _function_of(self, value: Any) -> str:
        """The function a Ref/GetAtt names, seeing through aliases and versions."""
        if isinstance(value, dict):
            value = value.get("Ref") or value.get("Fn::GetAtt", [""])[0]
        lid = str(value)
        resource = self.resources.get(lid, {})
        if resource.get("Type") in ("AWS::Lambda::Alias", "AWS::Lambda::Version"):
            return self._function_of(resource["Properties"]["FunctionName"])
        return lid

    def _attach_routes(self, functions: dict[str, Function]) -> None:
        """Routes as API Gateway sees them: the HttpApi's OpenAPI body and its integrations."""
        for api in self.of_type("AWS::ApiGatewayV2::Api").values():
            for path, operations in api["Properties"].get("Body", {}).get("paths", {}).items():
                for method, operation in operations.items():
                    uri = operation.get("x-amazon-apigateway-integration", {}).get("uri", {})
                    text = uri.get("Fn::Sub", "") if isinstance(uri, dict) else str(uri)
                    match = re.search(r"functions/\$\{([A-Za-z0-9]+)(?:\.Arn)?\}/", str(text))
                    if not match:
                        continue
                    lid = self._function_of(match.group(1))
                    verb = "ANY" if method == "x-amazon-apigateway-any-method" else method.upper()
                    functions[lid].http_routes.append((verb, path))

    def _attach_event_sources(self, functions: dict[str, Function]) -> None:
        for res in self.of_type("AWS::Lambda::EventSourceMapping").values():
            props = res["Properties"]
            lid = self._function_of(props["FunctionName"])
            source = props["EventSourceArn"]
            queue = source["Fn::GetAtt"][0] if isinstance(source, dict) else None
            if lid in functions and queue:
                fn = functions[lid]
                fn.queue_logical_id = queue
                fn.batch_size = int(props.get("BatchSize", 10))
                fn.report_batch_item_failures = "ReportBatchItemFailures" in props.get(
                    "FunctionResponseTypes", []
                )

    # --- provisioning --------------------------------------------------------------------

    def provision(self, dynamodb: DynamoDBClient, sqs: SQSClient) -> None:
        """Create every table and queue of the template, as CloudFormation would."""
        for lid, res in self.of_type("AWS::DynamoDB::Table").items():
            self._create_table(dynamodb, self.physical[lid]["Ref"], self.resolve(res["Properties"]))
        queues = self.of_type("AWS::SQS::Queue")
        for lid, res in queues.items():
            props = self.resolve(res["Properties"])
            props.pop("RedrivePolicy", None)
            sqs.create_queue(
                QueueName=self.physical[lid]["QueueName"],
                Attributes=_queue_attributes(props),  # type: ignore[arg-type]
            )
        for lid, res in queues.items():
            redrive = self.resolve(res["Properties"].get("RedrivePolicy"))
            if redrive:
                sqs.set_queue_attributes(
                    QueueUrl=self.queue_url(lid),
                    Attributes={"RedrivePolicy": json.dumps(redrive)},
                )

    def queue_url(self, lid: str) -> str:
        return self.physical[lid]["Ref"]

    @staticmethod
    def _create_table(client: DynamoDBClient, name: str, props: dict[str, Any]) -> None:
        spec: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": props.get("BillingMode", "PROVISIONED"),
        }
        if "GlobalSecondaryIndexes" in props:
            spec["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
        if "StreamSpecification" in props:
            spec["StreamSpecification"] = {"StreamEnabled": True} | props["StreamSpecification"]
        client.create_table(**spec)
        ttl = props.get("TimeToLiveSpecification")
        if ttl:
            client.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
        pitr = props.get("PointInTimeRecoverySpecification")
        if pitr:
            client.update_continuous_backups(TableName=name, PointInTimeRecoverySpecification=pitr)


def _throttle(settings: dict[str, Any]) -> Throttle | None:
    rate, burst = settings.get("ThrottlingRateLimit"), settings.get("ThrottlingBurstLimit")
    if rate is None and burst is None:
        return None
    # Only one of the two set: the other one is the account's, as API Gateway applies them.
    return Throttle(
        rate=float(rate) if rate is not None else ACCOUNT_RATE_LIMIT,
        burst=int(float(burst)) if burst is not None else ACCOUNT_BURST_LIMIT,
    )


_QUEUE_ATTRIBUTES = {
    "FifoQueue",
    "ContentBasedDeduplication",
    "VisibilityTimeout",
    "MessageRetentionPeriod",
    "DelaySeconds",
    "ReceiveMessageWaitTimeSeconds",
    "MaximumMessageSize",
    "SqsManagedSseEnabled",
    "DeduplicationScope",
    "FifoThroughputLimit",
}


def _queue_attributes(props: dict[str, Any]) -> dict[str, str]:
    def text(value: Any) -> str:
        return str(value).lower() if isinstance(value, bool) else str(value)

    return {key: text(value) for key, value in props.items() if key in _QUEUE_ATTRIBUTES}
