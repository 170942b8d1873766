"""template.yaml, checked as CloudFormation sees it (after the SAM transform) and as written."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from infra.local.stack import TEMPLATE, Stack
from ordo.aws import sdk_call_budget
from ordo.registry import KINDS
from ordo.settings import Settings
from ordo.worker import job_margin

API_FUNCTIONS = (
    "SubmitFunction",
    "StatusFunction",
    "ResultFunction",
    "AuthFunction",
    "UsersFunction",
    "CasesFunction",
    "DocumentsFunction",
    "HealthFunction",
    "FetchFunction",
    "ProductsFunction",
    "AdminFunction",
)
QUEUE_FUNCTIONS = ("WorkerFunction", "CaseTimerFunction", "DeadLetterFunction")
SCHEDULED_FUNCTIONS = ("ReconcilerFunction",)
FUNCTIONS = (*API_FUNCTIONS, *QUEUE_FUNCTIONS, *SCHEDULED_FUNCTIONS)
ROUTES = {
    "SubmitFunction": [("POST", "/jobs"), ("POST", "/tasks")],
    "StatusFunction": [("GET", "/jobs"), ("GET", "/tasks/{task_id}")],
    "ResultFunction": [("GET", "/tasks/{task_id}/result")],
    "AuthFunction": [
        ("GET", "/auth/me"),
        ("POST", "/auth/login"),
        ("POST", "/auth/login/json"),
        ("POST", "/auth/logout"),
        ("POST", "/auth/refresh"),
        ("POST", "/auth/register"),
    ],
    "UsersFunction": [
        ("DELETE", "/users/{user_id}"),
        ("GET", "/users"),
        ("GET", "/users/{user_id}"),
        ("PUT", "/users/{user_id}"),
        ("PUT", "/users/{user_id}/role"),
    ],
    "CasesFunction": [("GET", "/cases"), ("GET", "/cases/{case_id}"), ("POST", "/cases")],
    "DocumentsFunction": [("GET", "/status/{job_id}"), ("POST", "/process"), ("POST", "/upload")],
    "HealthFunction": [("GET", "/health")],
    "FetchFunction": [("GET", "/data"), ("GET", "/fetch/status/{job_id}"), ("POST", "/fetch")],
    "ProductsFunction": [
        ("DELETE", "/products/{product_id}"),
        ("GET", "/products"),
        ("GET", "/products/search"),
        ("GET", "/products/{product_id}"),
        ("POST", "/products"),
        ("PUT", "/products/{product_id}"),
    ],
    "AdminFunction": [
        ("GET", "/admin/jobs"),
        ("GET", "/admin/lane"),
        ("POST", "/admin/jobs/{job_id}/retry"),
    ],
}
BASIC_EXECUTION = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
SQS_EXECUTION = "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole"
TABLE_ARN = {"Fn::GetAtt": ["JobsTable", "Arn"]}
QUEUE_ARN = {"Fn::GetAtt": ["JobsQueue", "Arn"]}
DLQ_ARN = {"Fn::GetAtt": ["JobsDeadLetterQueue", "Arn"]}
QUEUE_INDEX_ARN = {"Fn::Sub": "${JobsTable.Arn}/index/queue"}
STATUS_INDEX_ARN = {"Fn::Sub": "${JobsTable.Arn}/index/jobs_by_status"}
GSI1_ARN = {"Fn::Sub": "${JobsTable.Arn}/index/gsi1"}
GSI2_ARN = {"Fn::Sub": "${JobsTable.Arn}/index/gsi2"}
CASE_TIMER_ARN = {"Fn::GetAtt": ["CaseTimerQueue", "Arn"]}
JWT_PUBLIC_KEYS_ARN = {
    "Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}"
    ":parameter${JwtPublicKeysParameterName}"
}
JWT_SIGNING_KEY_ARN = {
    "Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}"
    ":parameter${JwtSigningKeyParameterName}"
}
ANY_ITEM = None
# Every (action, resource) a function's policies grant, with the partition-key prefixes
# (dynamodb:LeadingKeys) it is limited to: exactly these.
Grant = tuple[str, Any, tuple[str, ...] | None]


READ_PUBLIC_KEYS = ("ssm:GetParameter", JWT_PUBLIC_KEYS_ARN, ANY_ITEM)
READ_SIGNING_KEY = ("ssm:GetParameter", JWT_SIGNING_KEY_ARN, ANY_ITEM)
GRANTS: dict[str, list[Grant]] = {
    "SubmitFunction": [
        ("dynamodb:GetItem", TABLE_ARN, ("JOB#*", "USER#*")),
        ("dynamodb:PutItem", TABLE_ARN, ("JOB#*",)),
        ("dynamodb:UpdateItem", TABLE_ARN, ("JOB#*", "QUOTA#*")),
        ("sqs:SendMessage", QUEUE_ARN, ANY_ITEM),
        READ_PUBLIC_KEYS,
    ],
    "StatusFunction": [
        ("dynamodb:GetItem", TABLE_ARN, ("JOB#*", "USER#*")),
        ("dynamodb:Query", QUEUE_INDEX_ARN, ("LANE#jobs",)),
        ("dynamodb:Query", GSI1_ARN, ("JOBS#*",)),
        ("dynamodb:BatchGetItem", TABLE_ARN, ("JOB#*",)),
        READ_PUBLIC_KEYS,
    ],
    "ResultFunction": [
        ("dynamodb:GetItem", TABLE_ARN, ("JOB#*", "USER#*")),
        READ_PUBLIC_KEYS,
    ],
    "WorkerFunction": [
        ("dynamodb:GetItem", TABLE_ARN, ("JOB#*", "LOCK#*", "FETCH#*")),
        ("dynamodb:UpdateItem", TABLE_ARN, ("JOB#*", "QUOTA#*")),
        ("dynamodb:PutItem", TABLE_ARN, ("LOCK#*", "FETCH#*")),
        ("dynamodb:DeleteItem", TABLE_ARN, ("LOCK#*",)),
        ("dynamodb:BatchGetItem", TABLE_ARN, ("POST#*",)),
        ("dynamodb:BatchWriteItem", TABLE_ARN, ("POST#*",)),
        ("sqs:ChangeMessageVisibility", QUEUE_ARN, ANY_ITEM),
    ],
    "DeadLetterFunction": [
        ("dynamodb:GetItem", TABLE_ARN, ("JOB#*",)),
        ("dynamodb:UpdateItem", TABLE_ARN, ("JOB#*", "QUOTA#*")),
    ],
    "ReconcilerFunction": [
        ("dynamodb:GetItem", TABLE_ARN, ("JOB#*",)),
        ("dynamodb:UpdateItem", TABLE_ARN, ("JOB#*", "QUOTA#*")),
        ("dynamodb:Query", STATUS_INDEX_ARN, ("JOBS#*",)),
        ("sqs:GetQueueAttributes", QUEUE_ARN, ANY_ITEM),
    ],
    "AdminFunction": [
        ("dynamodb:GetItem", TABLE_ARN, ("JOB#*", "USER#*")),
        ("dynamodb:PutItem", TABLE_ARN, ("JOB#*",)),
        ("dynamodb:UpdateItem", TABLE_ARN, ("JOB#*", "QUOTA#*")),
        ("dynamodb:Query", STATUS_INDEX_ARN, ("JOBS#*",)),
        ("sqs:SendMessage", QUEUE_ARN, ANY_ITEM),
        ("sqs:GetQueueAttributes", QUEUE_ARN, ANY_ITEM),
        ("sqs:GetQueueAttributes", DLQ_ARN, ANY_ITEM),
        READ_PUBLIC_KEYS,
    ],
    "AuthFunction": [
        ("dynamodb:GetItem", TABLE_ARN, ("USER#*", "USERNAME#*")),
        ("dynamodb:BatchGetItem", TABLE_ARN, ("LOGIN#*",)),
        (
            "dynamodb:PutItem",
            TABLE_ARN,
            ("USER#*", "USERNAME#*", "EMAIL#*", "FAMILY#*", "LOGIN#*"),
        ),
        ("dynamodb:UpdateItem", TABLE_ARN, ("FAMILY#*", "LOGIN#*")),
        ("dynamodb:DeleteItem", TABLE_ARN, ("LOGIN#*",)),
        READ_PUBLIC_KEYS,
        READ_SIGNING_KEY,
    ],
    "UsersFunction": [
        ("dynamodb:GetItem", TABLE_ARN, ("USER#*",)),
        ("dynamodb:PutItem", TABLE_ARN, ("USER#*", "USERNAME#*", "EMAIL#*", "LOGIN#*")),
        ("dynamodb:DeleteItem", TABLE_ARN, ("USERNAME#*", "EMAIL#*", "LOGIN#*")),
        ("dynamodb:UpdateItem", TABLE_ARN, ("LOGIN#*",)),
        ("dynamodb:Query", GSI1_ARN, ("USERS",)),
        ("dynamodb:BatchGetItem", TABLE_ARN, ("USER#*", "LOGIN#*")),
        READ_PUBLIC_KEYS,
    ],
    "CasesFunction": [
        ("dynamodb:GetItem", TABLE_ARN, ("CASE#*", "USER#*")),
        ("dynamodb:PutItem", TABLE_ARN, ("CASE#*",)),
        ("dynamodb:Query", GSI1_ARN, ("CASES#*",)),
        ("dynamodb:Query", GSI2_ARN, ("CASES",)),
        ("dynamodb:BatchGetItem", TABLE_ARN, ("CASE#*",)),
        ("sqs:SendMessage", CASE_TIMER_ARN, ANY_ITEM),
        READ_PUBLIC_KEYS,
    ],
    "CaseTimerFunction": [
        ("dynamodb:GetItem", TABLE_ARN, ("CASE#*",)),
        ("dynamodb:PutItem", TABLE_ARN, ("CASE#*",)),
    ],
    "DocumentsFunction": [
        ("dynamodb:GetItem", TABLE_ARN, ("JOB#*", "USER#*")),
        ("dynamodb:PutItem", TABLE_ARN, ("JOB#*",)),
        ("dynamodb:UpdateItem", TABLE_ARN, ("JOB#*", "QUOTA#*")),
        ("sqs:SendMessage", QUEUE_ARN, ANY_ITEM),
        READ_PUBLIC_KEYS,
    ],
    "HealthFunction": [
        ("dynamodb:DescribeTable", TABLE_ARN, ANY_ITEM),
        ("sqs:GetQueueAttributes", QUEUE_ARN, ANY_ITEM),
    ],
    "FetchFunction": [
        ("dynamodb:GetItem", TABLE_ARN, ("JOB#*", "USER#*", "LOCK#*", "FETCH#*", "ACTIVE#fetch")),
        ("dynamodb:PutItem", TABLE_ARN, ("JOB#*", "LOCK#*", "FETCH#*", "ACTIVE#fetch")),
        ("dynamodb:UpdateItem", TABLE_ARN, ("JOB#*", "QUOTA#*")),
        ("dynamodb:DeleteItem", TABLE_ARN, ("LOCK#*",)),
        ("dynamodb:BatchGetItem", TABLE_ARN, ("POST#*",)),
        ("dynamodb:BatchWriteItem", TABLE_ARN, ("POST#*",)),
        ("dynamodb:Query", GSI1_ARN, ("POSTS",)),
        ("dynamodb:Query", GSI2_ARN, ("POSTS#USER#*",)),
        ("sqs:SendMessage", QUEUE_ARN, ANY_ITEM),
        READ_PUBLIC_KEYS,
    ],
    "ProductsFunction": [
        ("dynamodb:GetItem", TABLE_ARN, ("CATALOG", "USER#*")),
        ("dynamodb:Query", TABLE_ARN, ("CATALOG", "USER#*")),
        ("dynamodb:PutItem", TABLE_ARN, ("CATALOG", "SKU#*")),
        ("dynamodb:UpdateItem", TABLE_ARN, ("CATALOG",)),
        ("dynamodb:DeleteItem", TABLE_ARN, ("SKU#*",)),
        READ_PUBLIC_KEYS,
    ],
}
MANAGED_POLICIES = {lid: {BASIC_EXECUTION} for lid in (*API_FUNCTIONS, *SCHEDULED_FUNCTIONS)} | {
    lid: {BASIC_EXECUTION, SQS_EXECUTION} for lid in QUEUE_FUNCTIONS
}
SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL|API_?KEY|PRIVATE_?KEY", re.I)
SECRET_TEXT = [
    re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b"),  # an AWS access key id
    re.compile(r"aws_secret_access_key", re.I),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
]


@pytest.fixture(scope="module")
def stack() -> Stack:
    return Stack.load()


@pytest.fixture(scope="module")
def sam() -> dict[str, Any]:
    """The template as written (before the transform), intrinsics in their long form."""
    from samtranslator.yaml_helper import yaml_parse

    parsed: dict[str, Any] = yaml_parse(TEMPLATE.read_text())
    return parsed


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _props(stack: Stack, lid: str) -> dict[str, Any]:
    props: dict[str, Any] = stack.resources[lid]["Properties"]
    return props


def _statements(role: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for policy in role["Properties"].get("Policies", []):
        yield from _as_list(policy["PolicyDocument"]["Statement"])


def _role_of(stack: Stack, function: str) -> str:
    role = _props(stack, function)["Role"]
    assert isinstance(role, dict), f"{function}: role is not made by the template"
    assert "Fn::GetAtt" in role, f"{function}: role is not made by the template"
    lid: str = role["Fn::GetAtt"][0]
    assert stack.resources[lid]["Type"] == "AWS::IAM::Role"
    return lid


def _aliases(stack: Stack, function: str) -> set[str]:
    return {
        lid
        for lid, res in stack.of_type("AWS::Lambda::Alias").items()
        if res["Properties"]["FunctionName"] == {"Ref": function}
    }


# --- lint ------------------------------------------------------------------------------------


def test_cfn_lint_reports_nothing() -> None:
    from cfnlint.api import lint_file

    matches = lint_file(TEMPLATE)

    assert [str(match) for match in matches] == []


# --- functions -------------------------------------------------------------------------------


def test_the_template_has_exactly_these_functions(stack: Stack) -> None:
    assert sorted(stack.of_type("AWS::Lambda::Function")) == sorted(FUNCTIONS)


def test_every_function_runs_on_python312(stack: Stack) -> None:
    runtimes = {
        lid: res["Properties"].get("Runtime")
        for lid, res in stack.of_type("AWS::Lambda::Function").items()
    }

    assert runtimes == dict.fromkeys(FUNCTIONS, "python3.12")


def test_every_function_and_the_layer_are_arm64(stack: Stack, sam: dict[str, Any]) -> None:
    architectures = {
        lid: res["Properties"].get("Architectures")
        for lid, res in stack.of_type("AWS::Lambda::Function").items()
    }
    (layer,) = stack.of_type("AWS::Lambda::LayerVersion")

    assert architectures == {lid: ["arm64"] for lid in FUNCTIONS}
    assert _props(stack, layer)["CompatibleArchitectures"] == ["arm64"]
    # sam build (BuildMethod: makefile) is told the same; the Makefile picks aarch64 wheels
    assert sam["Resources"]["CoreLayer"]["Metadata"]["BuildArchitecture"] == "arm64"


def test_every_function_uses_the_core_layer(stack: Stack) -> None:
    (layer,) = stack.of_type("AWS::Lambda::LayerVersion")
    assert _props(stack, layer)["CompatibleRuntimes"] == ["python3.12"]
    for lid in FUNCTIONS:
        assert _props(stack, lid)["Layers"] == [{"Ref": layer}], lid


# --- API -------------------------------------------------------------------------------------


def test_the_api_is_an_http_api(stack: Stack) -> None:
    assert list(stack.of_type("AWS::ApiGatewayV2::Api")) == ["Api"]
    assert stack.of_type("AWS::ApiGateway::RestApi") == {}


def test_the_api_routes_are_exactly_these(stack: Stack) -> None:
    (api,) = stack.of_type("AWS::ApiGatewayV2::Api").values()
    paths = api["Properties"]["Body"]["paths"]
    routes = {(method.upper(), path) for path, ops in paths.items() for method in ops}

    assert routes == {route for function_routes in ROUTES.values() for route in function_routes}
    by_function = {
        lid: sorted(fn.http_routes) for lid, fn in stack.functions().items() if fn.http_routes
    }
    assert by_function == ROUTES


# --- queues ----------------------------------------------------------------------------------


def test_the_jobs_queue_is_fifo_deduplicated_by_id_and_redrives_to_the_dlq(
    stack: Stack, sam: dict[str, Any]
) -> None:
    queue = _props(stack, "JobsQueue")

    assert queue["FifoQueue"] is True
    assert queue["ContentBasedDeduplication"] is False
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": DLQ_ARN,
        "maxReceiveCount": {"Ref": "MaxReceiveCount"},
    }
    assert sam["Parameters"]["MaxReceiveCount"]["Default"] == 5
    assert stack.resolve(queue["RedrivePolicy"])["maxReceiveCount"] == "5"


def test_the_dead_letter_queue_is_fifo(stack: Stack) -> None:
    dlq = _props(stack, "JobsDeadLetterQueue")

    assert dlq["FifoQueue"] is True
    assert "RedrivePolicy" not in dlq


def test_the_queue_hides_messages_for_six_worker_timeouts(stack: Stack) -> None:
    worker = stack.functions()["WorkerFunction"]
    visibility = int(_props(stack, "JobsQueue")["VisibilityTimeout"])

    assert worker.queue_logical_id == "JobsQueue"
    assert visibility >= 6 * worker.timeout, (visibility, worker.timeout)


# --- worker ----------------------------------------------------------------------------------


def test_the_worker_runs_alone_and_reports_batch_item_failures(stack: Stack) -> None:
    worker = stack.functions()["WorkerFunction"]
    mapping = stack.resources["WorkerFunctionJobs"]

    assert worker.reserved_concurrency == 1
    assert worker.queue_logical_id == "JobsQueue"
    assert worker.report_batch_item_failures
    assert "ReportBatchItemFailures" in mapping["Properties"]["FunctionResponseTypes"]


def test_the_case_timer_is_a_standard_queue_apart_from_the_lane(stack: Stack) -> None:
    """Per-message DelaySeconds needs a standard queue; the lane's worker never sees it."""
    timer = stack.functions()["CaseTimerFunction"]
    queue = _props(stack, "CaseTimerQueue")

    assert timer.queue_logical_id == "CaseTimerQueue"
    assert timer.report_batch_item_failures
    assert not queue.get("FifoQueue")
    assert int(queue["VisibilityTimeout"]) >= 6 * timer.timeout
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["CaseTimerDeadLetterQueue", "Arn"]
    }
    mappings = stack.of_type("AWS::Lambda::EventSourceMapping").values()
    assert sorted(m["Properties"]["EventSourceArn"]["Fn::GetAtt"][0] for m in mappings) == [
        "CaseTimerQueue",
        "JobsDeadLetterQueue",
        "JobsQueue",
    ]


# --- time budgets, derived from the job kinds ------------------------------------------------


def _settings(stack: Stack, function: str) -> Settings:
    return Settings.from_env(stack.functions()[function].environment)


def _sdk_budget(config: Settings) -> float:
    return sdk_call_budget(
        config.sdk_connect_timeout, config.sdk_read_timeout, config.sdk_max_attempts
    )


def test_the_worker_timeout_fits_a_full_batch_of_the_longest_job_kind(
    stack: Stack, sam: dict[str, Any]
) -> None:
    worker = stack.functions()["WorkerFunction"]
    # Every kind's budget at the largest time scale a deployment allows, plus the worker's own
    # margin (its retry budget, and claim and finish at their slowest SDK budget).
    longest = KINDS.longest_budget(time_scale=1.0)
    margin = job_margin(_sdk_budget(_settings(stack, "WorkerFunction")))

    # And a second for the invocation itself, before its first job starts.
    assert worker.timeout >= worker.batch_size * (longest + margin) + 1, (
        worker.timeout,
        worker.batch_size,
        longest,
        margin,
    )
    # The bound holds only while no deployment can stretch the delays beyond their nominal value.
    scale = re.compile(sam["Parameters"]["TimeScale"]["AllowedPattern"])
    assert all(scale.fullmatch(value) for value in ("0", "0.25", "1", "1.0"))
    assert not any(scale.fullmatch(value) for value in ("1.5", "2", "10", "-1"))


def test_the_worker_makes_one_sdk_attempt_per_call_and_retries_within_its_own_budget(
    stack: Stack,
) -> None:
    assert _settings(stack, "WorkerFunction").sdk_max_attempts == 1


@pytest.mark.parametrize("function", [*API_FUNCTIONS, "DeadLetterFunction", "CaseTimerFunction"])
def test_every_sdk_call_fits_inside_its_functions_timeout(stack: Stack, function: str) -> None:
    """Connect and read timeouts times attempts, with botocore's longest backoffs."""
    timeout = stack.functions()[function].timeout

    assert _sdk_budget(_settings(stack, function)) < timeout, function


def test_the_reconciler_knows_the_workers_timeout(stack: Stack) -> None:
    worker = stack.functions()["WorkerFunction"]

    assert _settings(stack, "ReconcilerFunction").worker_timeout_seconds == worker.timeout


def test_the_dead_letter_queue_hides_messages_for_six_consumer_timeouts(stack: Stack) -> None:
    consumer = stack.functions()["DeadLetterFunction"]

    assert consumer.queue_logical_id == "JobsDeadLetterQueue"
    assert consumer.report_batch_item_failures
    assert int(_props(stack, "JobsDeadLetterQueue")["VisibilityTimeout"]) >= 6 * consumer.timeout


# --- table -----------------------------------------------------------------------------------


def test_the_table_is_on_demand_retained_recoverable_and_expiring(stack: Stack) -> None:
    table = stack.resources["JobsTable"]
    props = table["Properties"]

    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert table.get("DeletionPolicy") == "Retain"
    assert table.get("UpdateReplacePolicy") == "Retain"
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


def test_the_table_has_the_sparse_queue_index(stack: Stack) -> None:
    indexes = {
        index["IndexName"]: index
        for index in _props(stack, "JobsTable").get("GlobalSecondaryIndexes", [])
    }

    assert "queue" in indexes
    assert indexes["queue"]["KeySchema"] == [
        {"AttributeName": "lane", "KeyType": "HASH"},
        {"AttributeName": "seq", "KeyType": "RANGE"},
    ]


# Never copied into an index: the user's password hash and token generation, a refresh-token
# family's state, and a case's clinical text (its notes, and the summary and steps of its review).
SENSITIVE_ATTRIBUTES = {
    "password_hash",
    "token_generation",
    "current",
    "revoked",
    "notes",
    "summary",
    "steps",
}


def test_no_index_copies_a_secret_or_clinical_text(stack: Stack) -> None:
    indexes = _props(stack, "JobsTable")["GlobalSecondaryIndexes"]
    projections = {index["IndexName"]: index["Projection"] for index in indexes}

    assert set(projections) == {"queue", "gsi1", "gsi2", "jobs_by_status"}
    assert "LocalSecondaryIndexes" not in _props(stack, "JobsTable")
    for name, projection in projections.items():
        assert projection["ProjectionType"] in ("KEYS_ONLY", "INCLUDE"), name
        assert not SENSITIVE_ATTRIBUTES & set(projection.get("NonKeyAttributes", [])), name


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_item_action_is_limited_to_key_prefixes(stack: Stack, function: str) -> None:
    """On the table and on every index: no function may read or write any partition."""
    role = stack.resources[_role_of(stack, function)]
    for statement in _statements(role):
        actions = [a for a in _as_list(statement["Action"]) if a.startswith("dynamodb:")]
        if actions and actions != ["dynamodb:DescribeTable"]:
            condition = statement.get("Condition", {}).get("ForAllValues:StringLike", {})
            assert condition.get("dynamodb:LeadingKeys"), (function, statement)


# --- IAM -------------------------------------------------------------------------------------


def test_the_only_iam_resources_are_the_functions_roles(stack: Stack) -> None:
    iam = {lid for lid, res in stack.resources.items() if res["Type"].startswith("AWS::IAM::")}

    assert iam == {_role_of(stack, lid) for lid in FUNCTIONS}


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_role_grants_exactly_what_its_function_needs(stack: Stack, function: str) -> None:
    role = stack.resources[_role_of(stack, function)]
    granted: dict[tuple[str, str], frozenset[str] | None] = {}
    for statement in _statements(role):
        assert statement["Effect"] == "Allow", statement
        assert "NotAction" not in statement, statement
        assert "NotResource" not in statement, statement
        condition = statement.get("Condition", {})
        assert set(condition) <= {"ForAllValues:StringLike"}, statement
        keys = condition.get("ForAllValues:StringLike", {}).get("dynamodb:LeadingKeys")
        for action in _as_list(statement["Action"]):
            assert "*" not in action, f"{function}: wildcard action {action}"
            for resource in _as_list(statement["Resource"]):
                assert resource != "*", f"{function}: {action} on every resource"
                key = (action, repr(stack.resolve(resource)))
                assert key not in granted, f"{function}: {action} granted twice"
                granted[key] = frozenset(keys) if keys is not None else None

    expected = {
        (action, repr(stack.resolve(resource))): frozenset(keys) if keys is not None else None
        for action, resource, keys in GRANTS[function]
    }
    assert granted == expected
    managed = {stack.resolve(arn) for arn in role["Properties"].get("ManagedPolicyArns", [])}
    assert managed == MANAGED_POLICIES[function]


# --- outputs, secrets ------------------------------------------------------------------------


def test_the_outputs_name_the_api_table_and_queue(stack: Stack) -> None:
    outputs = stack.template["Outputs"]

    assert {"ApiUrl", "TableName", "QueueUrl"} <= set(outputs)
    assert "${Api}" in outputs["ApiUrl"]["Value"]["Fn::Sub"]
    assert outputs["TableName"]["Value"] == {"Ref": "JobsTable"}
    assert outputs["QueueUrl"]["Value"] == {"Ref": "JobsQueue"}


def test_no_secret_is_written_into_the_template(stack: Stack, sam: dict[str, Any]) -> None:
    for name, spec in sam["Parameters"].items():
        names_a_secret = name.endswith("ParameterName") and "AllowedPattern" in spec
        if SECRET_NAME.search(name) and spec["Type"] != "Number" and not names_a_secret:
            assert spec.get("NoEcho") is True, f"parameter {name} must be NoEcho"
            assert "Default" not in spec, f"parameter {name} has a default value"

    variables = dict(sam["Globals"]["Function"].get("Environment", {}).get("Variables", {}))
    for res in stack.of_type("AWS::Lambda::Function").values():
        variables |= res["Properties"].get("Environment", {}).get("Variables", {})
    assert variables, "no environment found: the scan below would prove nothing"
    literal = {
        name: value
        for name, value in variables.items()
        if SECRET_NAME.search(name)
        and isinstance(value, str | int | float)
        and not str(value).startswith("{{resolve:")
    }
    assert literal == {}

    text = TEMPLATE.read_text()
    assert [pattern.pattern for pattern in SECRET_TEXT if pattern.search(text)] == []


def test_only_the_auth_function_may_read_the_signing_key_and_api_functions_the_public_keys(
    stack: Stack, sam: dict[str, Any]
) -> None:
    parameters = sam["Parameters"]
    assert "JwtSecretParameterName" not in parameters  # HS256 and its shared secret are gone
    assert parameters["JwtSigningKeyParameterName"]["Default"] == "/ordo/jwt-signing-key"
    assert parameters["JwtPublicKeysParameterName"]["Default"] == "/ordo/jwt-public-keys"
    globals_env = sam["Globals"]["Function"]["Environment"]["Variables"]
    assert globals_env["ORDO_JWT_PUBLIC_KEYS_PARAMETER"] == {"Ref": "JwtPublicKeysParameterName"}
    assert globals_env["ORDO_JWT_ISSUER"] == {"Fn::Sub": "ordo/${AWS::StackName}"}
    assert globals_env["ORDO_JWT_AUDIENCE"] == "ordo-api"
    assert not {"ORDO_JWT_SIGNING_KEY", "ORDO_JWT_SIGNING_KEY_PARAMETER"} & set(globals_env)

    for lid, function in stack.functions().items():
        named = "ORDO_JWT_SIGNING_KEY_PARAMETER" in function.environment
        assert named == (lid == "AuthFunction"), lid

    def readers(grant: Grant) -> set[str]:
        return {lid for lid in FUNCTIONS if grant in GRANTS[lid]}

    assert readers(READ_SIGNING_KEY) == {"AuthFunction"}
    assert readers(READ_PUBLIC_KEYS) == set(API_FUNCTIONS) - {"HealthFunction"}  # no token
    ssm = {lid for lid in FUNCTIONS if any(g[0].startswith("ssm:") for g in GRANTS[lid])}
    assert ssm == readers(READ_PUBLIC_KEYS)


def test_the_per_address_limit_reaches_the_functions_that_charge_it() -> None:
    readers = {
        lid
        for lid, function in Stack.load(overrides={"ClientAttempts": "500"}).functions().items()
        if function.environment.get("ORDO_CLIENT_ATTEMPTS") == "500"
    }
    assert readers == {"AuthFunction", "UsersFunction"}


def _rule_of(stack: Stack, function: str) -> dict[str, Any]:
    (rule,) = [
        res
        for res in stack.of_type("AWS::Events::Rule").values()
        for target in res["Properties"]["Targets"]
        if function in str(target["Arn"])
    ]
    return rule


def test_the_fetch_schedule_comes_from_parameters(stack: Stack, sam: dict[str, Any]) -> None:
    parameters = sam["Parameters"]
    assert parameters["FetchSchedule"]["Default"] == "rate(15 minutes)"
    assert parameters["FetchScheduleEnabled"]["Default"] == "true"
    rule = _rule_of(stack, "FetchFunction")
    assert rule["Properties"]["ScheduleExpression"] == {"Ref": "FetchSchedule"}
    assert rule["Properties"]["State"] == {"Fn::If": ["FetchScheduleOn", "ENABLED", "DISABLED"]}
    off = Stack.load(overrides={"FetchScheduleEnabled": "false"})
    assert off.resolve(_rule_of(off, "FetchFunction")["Properties"]["State"]) == "DISABLED"


def test_the_reconciler_runs_every_five_minutes_by_default(
    stack: Stack, sam: dict[str, Any]
) -> None:
    assert sam["Parameters"]["ReconcileSchedule"]["Default"] == "rate(5 minutes)"
    rule = _rule_of(stack, "ReconcilerFunction")
    assert rule["Properties"]["ScheduleExpression"] == {"Ref": "ReconcileSchedule"}


# --- alarms ----------------------------------------------------------------------------------

ALARMS = {
    "DeadLetterQueueAlarm": ("AWS/SQS", "JobsDeadLetterQueue"),
    "LaneAgeAlarm": ("AWS/SQS", "JobsQueue"),
    "WorkerErrorsAlarm": ("AWS/Lambda", "WorkerFunction"),
    "WorkerThrottlesAlarm": ("AWS/Lambda", "WorkerFunction"),
    "ReconcilerActionsAlarm": ("ordo", None),
}


def test_the_alarms_watch_the_lane_and_notify_the_optional_topic(
    stack: Stack, sam: dict[str, Any]
) -> None:
    alarms = stack.of_type("AWS::CloudWatch::Alarm")
    assert set(alarms) == set(ALARMS)
    topic = {"Fn::If": ["AlarmTopicGiven", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
    for lid, (namespace, subject) in ALARMS.items():
        props = alarms[lid]["Properties"]
        assert props["AlarmActions"] == topic, lid
        assert props["ComparisonOperator"] == "GreaterThanThreshold", lid
        assert namespace in str(props), lid
        assert subject is None or subject in str(props), lid
    assert sam["Parameters"]["AlarmTopicArn"]["Default"] == ""
    assert stack.resolve(alarms["LaneAgeAlarm"]["Properties"]["Threshold"]) == "900"
    assert alarms["ReconcilerActionsAlarm"]["Properties"]["MetricName"] == "ReconcilerActions"
    no_topic = stack.resolve(alarms["LaneAgeAlarm"]["Properties"]["AlarmActions"])
    assert no_topic in (None, [])


def test_a_sync_fetch_fits_api_gateways_30_seconds(stack: Stack) -> None:
    """The source's total deadline, then one SDK call at its slowest, inside the timeout."""
    fetch = stack.functions()["FetchFunction"]
    config = _settings(stack, "FetchFunction")
    assert config.fetch_deadline_seconds + _sdk_budget(config) < fetch.timeout < 30


def test_a_fetch_job_fits_its_kinds_budget() -> None:
    """The worker stops a fetch job at its kind's maximum; the source gives up before that."""
    assert Settings.model_fields["fetch_deadline_seconds"].metadata
    deadline_cap = max(
        m.le for m in Settings.model_fields["fetch_deadline_seconds"].metadata if hasattr(m, "le")
    )
    assert deadline_cap < KINDS.get("fetch").max_seconds


def test_the_worker_and_the_api_share_the_fetch_cache_window(stack: Stack) -> None:
    """A fetch job ends `cached` inside the same window a sync fetch honours."""
    overridden = Stack.load(overrides={"FetchCacheSeconds": "7"})
    for function in ("FetchFunction", "WorkerFunction"):
        assert _settings(overridden, function).fetch_cache_seconds == 7, function
        assert _settings(stack, function).fetch_cache_seconds == 60, function


# --- SnapStart -------------------------------------------------------------------------------


def test_snapstart_is_a_parameter_that_defaults_to_off(stack: Stack, sam: dict[str, Any]) -> None:
    parameter = sam["Parameters"]["EnableSnapStart"]

    assert parameter["Default"] == "false"
    assert sorted(parameter["AllowedValues"]) == ["false", "true"]
    assert stack.template["Conditions"]["SnapStartEnabled"] == {
        "Fn::Equals": [{"Ref": "EnableSnapStart"}, "true"]
    }


def test_snapstart_applies_to_published_versions_only_when_enabled(
    stack: Stack, sam: dict[str, Any]
) -> None:
    apply_on = {"Fn::If": ["SnapStartEnabled", "PublishedVersions", "None"]}

    assert sam["Globals"]["Function"]["SnapStart"] == {"ApplyOn": apply_on}
    for lid in FUNCTIONS:
        assert _props(stack, lid)["SnapStart"] == {"ApplyOn": apply_on}, lid
    on = Stack.load(overrides={"EnableSnapStart": "true"})
    assert on.resolve(_props(on, "WorkerFunction")["SnapStart"]) == {"ApplyOn": "PublishedVersions"}
    assert stack.resolve(_props(stack, "WorkerFunction")["SnapStart"]) == {"ApplyOn": "None"}


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_function_publishes_a_version_behind_an_alias(stack: Stack, function: str) -> None:
    versions = {
        lid
        for lid, res in stack.of_type("AWS::Lambda::Version").items()
        if res["Properties"]["FunctionName"] == {"Ref": function}
    }
    assert len(versions) == 1, f"{function}: no published version (AutoPublishAlias)"
    (alias,) = _aliases(stack, function)
    (version,) = versions
    assert _props(stack, alias)["FunctionVersion"] == {"Fn::GetAtt": [version, "Version"]}


def test_every_invocation_goes_through_the_alias(stack: Stack) -> None:
    """SnapStart only covers published versions: nothing may invoke the unqualified function."""
    aliases = {lid: _aliases(stack, lid) for lid in FUNCTIONS}
    for lid, res in stack.of_type("AWS::Lambda::Permission").items():
        (target,) = res["Properties"]["FunctionName"].values()
        assert any(target in names for names in aliases.values()), lid
    for lid, res in stack.of_type("AWS::Lambda::EventSourceMapping").items():
        target = res["Properties"]["FunctionName"]["Ref"]
        assert any(target in aliases[name] for name in QUEUE_FUNCTIONS), lid
    (api,) = stack.of_type("AWS::ApiGatewayV2::Api").values()
    for ops in api["Properties"]["Body"]["paths"].values():
        for op in ops.values():
            uri = op["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"]
            (target,) = re.findall(r"functions/\$\{([^}]+)\}/invocations", uri)
            assert any(target in names for names in aliases.values()), uri


# --- console (README: "Deploying the console") -----------------------------------------------

CONSOLE_SOURCE_ARN = {
    "Fn::Sub": "arn:${AWS::Partition}:cloudfront::${AWS::AccountId}"
    ":distribution/${ConsoleDistribution}"
}
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"


def _csp(stack: Stack) -> dict[str, str]:
    """The console's Content-Security-Policy, directive -> sources, for this region."""
    config = _props(stack, "ConsoleResponseHeadersPolicy")["ResponseHeadersPolicyConfig"]
    header = config["SecurityHeadersConfig"]["ContentSecurityPolicy"]
    assert header["Override"] is True
    text = stack.resolve(header["ContentSecurityPolicy"])
    directives = [d.split(None, 1) for d in text.split(";") if d.strip()]
    return {d[0]: d[1] if len(d) > 1 else "" for d in directives}


def test_the_console_bucket_is_private_encrypted_and_owner_enforced(stack: Stack) -> None:
    bucket = _props(stack, "ConsoleBucket")

    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    ]
    assert bucket["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert "WebsiteConfiguration" not in bucket
    assert "AccessControl" not in bucket


def test_only_the_console_distribution_may_read_the_bucket(stack: Stack) -> None:
    policies = [
        res["Properties"]
        for res in stack.of_type("AWS::S3::BucketPolicy").values()
        if res["Properties"]["Bucket"] == {"Ref": "ConsoleBucket"}
    ]
    assert len(policies) == 1
    statements = _as_list(policies[0]["PolicyDocument"]["Statement"])
    allows = [s for s in statements if s["Effect"] == "Allow"]
    denies = [s for s in statements if s["Effect"] == "Deny"]

    assert allows, "no statement lets CloudFront read the bucket"
    for statement in allows:
        assert statement["Principal"] == {"Service": "cloudfront.amazonaws.com"}, statement
        assert _as_list(statement["Action"]) == ["s3:GetObject"], statement
        assert statement["Resource"] == {"Fn::Sub": "${ConsoleBucket.Arn}/*"}, statement
        assert statement["Condition"] == {"StringEquals": {"AWS:SourceArn": CONSOLE_SOURCE_ARN}}, (
            statement
        )
    assert [s["Condition"] for s in denies] == [{"Bool": {"aws:SecureTransport": "false"}}]
    assert denies[0]["Principal"] == "*"
    assert denies[0]["Action"] == "s3:*"


def test_the_distribution_reads_the_bucket_through_origin_access_control(stack: Stack) -> None:
    config = _props(stack, "ConsoleDistribution")["DistributionConfig"]
    (origin,) = config["Origins"]
    oac = _props(stack, "ConsoleOriginAccessControl")["OriginAccessControlConfig"]

    assert origin["DomainName"] == {"Fn::GetAtt": ["ConsoleBucket", "RegionalDomainName"]}
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": ["ConsoleOriginAccessControl", "Id"]}
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}  # no OAI
    assert "CustomOriginConfig" not in origin  # not a website endpoint
    assert stack.of_type("AWS::CloudFront::CloudFrontOriginAccessIdentity") == {}
    assert (oac["OriginAccessControlOriginType"], oac["SigningBehavior"]) == ("s3", "always")
    assert oac["SigningProtocol"] == "sigv4"
    behavior = config["DefaultCacheBehavior"]
    assert behavior["TargetOriginId"] == origin["Id"]
    assert behavior["ViewerProtocolPolicy"] == "redirect-to-https"
    assert behavior["CachePolicyId"] == CACHING_OPTIMIZED
    assert behavior["ResponseHeadersPolicyId"] == {"Ref": "ConsoleResponseHeadersPolicy"}
    assert config["DefaultRootObject"] == "index.html"
    assert (config["PriceClass"], config["HttpVersion"]) == ("PriceClass_100", "http2and3")


def test_the_console_csp_allows_no_inline_code_and_no_third_party_origin(stack: Stack) -> None:
    csp = _csp(stack)
    sources = " ".join(csp.values())

    assert csp["default-src"] == "'self'"
    assert csp["script-src"] == "'self'"
    assert csp["style-src"] == "'self'"
    assert csp["object-src"] == "'none'"
    assert csp["frame-ancestors"] == "'none'"
    assert csp["base-uri"] == "'none'"
    assert "'unsafe-inline'" not in sources
    assert "'unsafe-eval'" not in sources
    origins = re.findall(r"\bhttps?://\S+|\*(?:\s|$)", sources)
    assert origins == ["https://*.execute-api.us-east-1.amazonaws.com"]
    assert csp["connect-src"] == "'self' https://*.execute-api.us-east-1.amazonaws.com"
    other_region = Stack.load(region="eu-west-1")
    assert "https://*.execute-api.eu-west-1.amazonaws.com" in _csp(other_region)["connect-src"]


def test_the_console_sends_the_security_headers(stack: Stack) -> None:
    config = _props(stack, "ConsoleResponseHeadersPolicy")["ResponseHeadersPolicyConfig"]
    headers = config["SecurityHeadersConfig"]

    assert headers["ContentTypeOptions"] == {"Override": True}  # nosniff
    assert headers["ReferrerPolicy"]["ReferrerPolicy"] in (
        "no-referrer",
        "strict-origin-when-cross-origin",
    )
    assert headers["FrameOptions"] == {"FrameOption": "DENY", "Override": True}
    assert headers["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31536000
    assert all(header["Override"] is True for header in headers.values()), headers


def test_the_api_allows_only_the_console_origin(stack: Stack) -> None:
    (api,) = stack.of_type("AWS::ApiGatewayV2::Api").values()
    cors = api["Properties"]["Body"]["x-amazon-apigateway-cors"]

    assert cors["allowOrigins"] == [{"Fn::Sub": "https://${ConsoleDistribution.DomainName}"}]
    assert sorted(cors["allowHeaders"]) == ["authorization", "content-type"]
    assert sorted(cors["allowMethods"]) == ["DELETE", "GET", "OPTIONS", "POST", "PUT"]
    assert cors["maxAge"] == 600
    assert cors.get("allowCredentials", False) is False
    # The distribution must not name the API, or the two would depend on each other.
    for lid in ("ConsoleDistribution", "ConsoleResponseHeadersPolicy", "ConsoleBucket"):
        assert not re.search(r"\bApi\b", str(stack.resources[lid])), lid


def test_the_outputs_name_the_console(stack: Stack) -> None:
    outputs = stack.template["Outputs"]

    assert outputs["ConsoleUrl"]["Value"] == {
        "Fn::Sub": "https://${ConsoleDistribution.DomainName}"
    }
    assert outputs["ConsoleBucketName"]["Value"] == {"Ref": "ConsoleBucket"}
    assert outputs["ConsoleDistributionId"]["Value"] == {"Ref": "ConsoleDistribution"}


@pytest.mark.parametrize("function", FUNCTIONS)
def test_no_function_may_touch_the_console(stack: Stack, function: str) -> None:
    role = stack.resources[_role_of(stack, function)]
    text = str(role["Properties"])

    assert "Console" not in text
    assert not any(
        str(action).startswith(("s3:", "cloudfront:"))
        for statement in _statements(role)
        for action in _as_list(statement["Action"])
    )
