"""The template's schedules: which functions they invoke, and the event each firing sends.

Both kinds of schedule in a SAM template are read: ``Schedule`` events (``AWS::Events::Rule``,
UTC only) and ``ScheduleV2`` events (``AWS::Scheduler::Schedule``, with an optional time zone,
start and end date), after the SAM transform (``infra.local.stack``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from infra.local.stack import ACCOUNT

if TYPE_CHECKING:
    from infra.local.stack import Stack


def stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def scheduled_event(rule_arn: str, region: str, account: str, when: datetime) -> dict[str, Any]:
    """The event EventBridge sends a scheduled rule's targets."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": stamp(when),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


@dataclass(frozen=True)
class ScheduledRule:
    """One schedule of the template and the function it invokes."""

    logical_id: str
    expression: str
    function: str
    enabled: bool
    arn: str
    source: Literal["aws.events", "aws.scheduler"] = "aws.events"
    input: str | None = None
    timezone: str | None = None
    start: datetime | None = None
    end: datetime | None = None


def _date(value: Any) -> datetime | None:
    if not value:
        return None
    moment = datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value)


def _lambda_target(stack: Stack, value: Any) -> str | None:
    """The function a target ARN names (through aliases and versions), or None."""
    functions = stack.of_type("AWS::Lambda::Function")
    if isinstance(value, dict) and ("Ref" in value or "Fn::GetAtt" in value):
        attribute = value.get("Fn::GetAtt")
        if isinstance(attribute, str):
            value = {"Fn::GetAtt": attribute.split(".", 1)}
        lid = stack._function_of(value)
        return lid if lid in functions else None
    arn = str(stack.resolve(value))
    for lid in functions:
        own = stack.physical[lid]["Arn"]
        if arn == own or arn.startswith(f"{own}:"):
            return lid
    return None


def _exists(stack: Stack, resource: Mapping[str, Any]) -> bool:
    condition = resource.get("Condition")
    return condition is None or stack._condition(condition)


def rules_of(stack: Stack) -> list[ScheduledRule]:
    """The template's schedules that invoke a function, enabled or not."""
    rules: list[ScheduledRule] = []
    for lid, resource in stack.of_type("AWS::Events::Rule").items():
        props = resource.get("Properties", {})
        expression = stack.resolve(props.get("ScheduleExpression"))
        if not expression or not _exists(stack, resource):
            continue
        name = stack.resolve(props.get("Name")) or f"{stack.name}-{lid}"
        enabled = stack.resolve(props.get("State", "ENABLED")) != "DISABLED"
        for target in props.get("Targets", []):
            function = _lambda_target(stack, target.get("Arn"))
            if function is not None:
                rules.append(
                    ScheduledRule(
                        lid,
                        str(expression),
                        function,
                        enabled,
                        f"arn:aws:events:{stack.region}:{ACCOUNT}:rule/{name}",
                        input=_text(stack.resolve(target.get("Input"))),
                    )
                )
    for lid, resource in stack.of_type("AWS::Scheduler::Schedule").items():
        props = resource.get("Properties", {})
        if not _exists(stack, resource):
            continue
        target = props.get("Target", {})
        function = _lambda_target(stack, target.get("Arn"))
        if function is None:
            continue
        name = stack.resolve(props.get("Name")) or f"{stack.name}-{lid}"
        group = stack.resolve(props.get("GroupName")) or "default"
        rules.append(
            ScheduledRule(
                lid,
                str(stack.resolve(props["ScheduleExpression"])),
                function,
                stack.resolve(props.get("State", "ENABLED")) != "DISABLED",
                f"arn:aws:scheduler:{stack.region}:{ACCOUNT}:schedule/{group}/{name}",
                source="aws.scheduler",
                input=_text(stack.resolve(target.get("Input"))),
                timezone=stack.resolve(props.get("ScheduleExpressionTimezone")),
                start=_date(stack.resolve(props.get("StartDate"))),
                end=_date(stack.resolve(props.get("EndDate"))),
            )
        )
    return rules
