"""``crimecast sagemaker schedule``: an EventBridge rule that starts the SageMaker pipeline.

The rule (PutRule) carries the schedule expression; its one target (PutTargets) is
the pipeline's ARN with ``SageMakerPipelineParameters`` (the same ``NAME=VALUE``
overrides as ``crimecast sagemaker start``) and a role EventBridge assumes to call
``sagemaker:StartPipelineExecution``. Both calls create or replace, so running the
command again updates the schedule. The request builders are pure; only
:func:`upsert_schedule` calls AWS.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from crimecast.errors import ConfigError, PipelineError
from crimecast.pipeline.sagemaker_aws import _aws_call
from crimecast.pipeline.sagemaker_target import (
    DEFAULT_PIPELINE_NAME,
    check_pipeline_name,
    check_role,
)

TARGET_ID = "sagemaker-pipeline"
EXAMPLE = '--cron "cron(0 6 ? * MON *)"'
_RULE = re.compile(r"^[.\-_A-Za-z0-9]{1,64}$")
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# name, lowest, highest, names for 1.., extra forms allowed in the field
_FIELDS: tuple[tuple[str, int, int, tuple[str, ...], str], ...] = (
    ("minutes", 0, 59, (), ""), ("hours", 0, 23, (), ""),
    ("day-of-month", 1, 31, (), "?LW"), ("month", 1, 12, _MONTHS, ""),
    ("day-of-week", 1, 7, _DAYS, "?L#"), ("year", 1970, 2199, (), ""))


def check_schedule_expression(expression: str) -> str:
    """An EventBridge ``cron(...)`` (6 fields, UTC) or ``rate(...)`` expression, or ConfigError."""
    text = expression.strip()
    if text.startswith("rate("):
        match = _RATE.match(text)
        if not match or int(match.group(1)) < 1 or (int(match.group(1)) == 1) != (
                not match.group(2).endswith("s")):
            raise ConfigError("--cron must be rate(VALUE UNIT) with a whole VALUE >= 1 and UNIT "
                              "minute, hour or day (plural when VALUE > 1); got "
                              f"'{expression}'. Pass e.g. --cron \"rate(7 days)\".")
        return text
    if not (text.startswith("cron(") and text.endswith(")")):
        raise ConfigError("--cron must be an EventBridge schedule expression, cron(MINUTES HOURS "
                          "DAY-OF-MONTH MONTH DAY-OF-WEEK YEAR) or rate(VALUE UNIT); got "
                          f"'{expression}'. Pass e.g. {EXAMPLE}.")
    parts = text[len("cron("):-1].split()
    if len(parts) != len(_FIELDS):
        raise ConfigError("--cron must have 6 fields in cron(...): minutes hours day-of-month "
                          f"month day-of-week year; got {len(parts)} in '{expression}'. Pass "
                          f"e.g. {EXAMPLE}.")
    for part, (name, low, high, names, extra) in zip(parts, _FIELDS, strict=True):
        if not _field_ok(part.upper(), low, high, names, extra):
            words = f" or {names[0]}-{names[-1]}" if names else ""
            marks = ", - * /" + "".join(f" {c}" for c in extra)
            raise ConfigError(f"--cron field {name} must be {low}-{high}{words} (with {marks}); "
                              f"got '{part}' in '{expression}'. Pass e.g. {EXAMPLE}.")
    if (parts[2] == "?") == (parts[4] == "?"):
        raise ConfigError("--cron must have ? in exactly one of day-of-month and day-of-week; "
                          f"got '{expression}'. Pass e.g. {EXAMPLE}.")
    return text


def _field_ok(field: str, low: int, high: int, names: tuple[str, ...], extra: str) -> bool:
    if field == "?":
        return "?" in extra
    if "L" in extra and field in ("L", "LW"):
        return field == "L" or "W" in extra
    for item in field.split(","):
        value, _, step = item.partition("/")
        if step and not step.isdigit():
            return False
        if "W" in extra and value.endswith("W"):
            value = value[:-1]
        elif "#" in extra and "#" in value:
            value, _, nth = value.partition("#")
            if nth not in ("1", "2", "3", "4", "5"):
                return False
        elif "L" in extra and value.endswith("L") and value != "L":
            value = value[:-1]
        if value == "*":
            continue
        for bound in value.split("-") if value.count("-") <= 1 else [""]:
            number = names.index(bound) + 1 if bound in names else (
                int(bound) if bound.isdigit() else -1)
            if not low <= number <= high:
                return False
    return True


def rule_request(rule_name: str, expression: str, pipeline_name: str) -> dict[str, Any]:
    """The EventBridge ``put_rule`` request (default event bus, enabled)."""
    return {"Name": rule_name, "ScheduleExpression": expression, "State": "ENABLED",
            "Description": f"Starts the SageMaker pipeline {pipeline_name} (crimecast)."}


def targets_request(rule_name: str, pipeline_arn: str, role_arn: str,
                    parameters: dict[str, str]) -> dict[str, Any]:
    """The EventBridge ``put_targets`` request: the pipeline, its parameters and the role."""
    target: dict[str, Any] = {"Id": TARGET_ID, "Arn": pipeline_arn, "RoleArn": role_arn}
    if parameters:
        target["SageMakerPipelineParameters"] = {"PipelineParameterList": [
            {"Name": k, "Value": v} for k, v in parameters.items()]}
    return {"Rule": rule_name, "Targets": [target]}


def check_schedule_flags(expression: str, pipeline_name: str, role_arn: str,
                         rule_name: str | None) -> tuple[str, str, str, str]:
    """Validated (expression, pipeline name, role ARN, rule name); rule defaults to
    ``<pipeline>-schedule``."""
    expression = check_schedule_expression(expression)
    try:
        check_pipeline_name(pipeline_name)
    except ConfigError:
        raise ConfigError("--pipeline-name must be 1-256 letters, digits or single hyphens, "
                          f"starting with a letter or digit; got '{pipeline_name}'. Pass "
                          f"--pipeline-name {DEFAULT_PIPELINE_NAME}.") from None
    try:
        check_role(role_arn)
    except ConfigError:
        raise ConfigError("--role-arn must be an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME); "
                          f"got '{role_arn}'. Pass the ARN of a role EventBridge "
                          "(events.amazonaws.com) can assume, allowed "
                          "sagemaker:StartPipelineExecution.") from None
    rule = rule_name if rule_name is not None else f"{pipeline_name[:55]}-schedule"
    if not _RULE.match(rule):
        raise ConfigError("--rule-name must be 1-64 letters, digits, dots, hyphens or "
                          f"underscores; got '{rule}'. Pass e.g. --rule-name crimecast-schedule.")
    return expression, pipeline_name, role_arn, rule


@dataclass(frozen=True)
class Scheduled:
    """What ``schedule`` did."""

    rule_arn: str
    created: bool
    pipeline_arn: str


def upsert_schedule(session: Any, expression: str, pipeline_name: str, role_arn: str,
                    rule_name: str, parameters: dict[str, str]) -> Scheduled:
    """Create or update the rule and point its target at the (existing) pipeline."""
    sagemaker = session.client("sagemaker")
    pipeline = _aws_call("sagemaker:DescribePipeline", "Check the caller's sagemaker rights.",
                         sagemaker.describe_pipeline, absent=("ResourceNotFound",
                                                              "ValidationException"),
                         PipelineName=pipeline_name)
    if pipeline is None:
        raise PipelineError(f"--pipeline-name must name an existing SageMaker pipeline; got "
                            f"'{pipeline_name}', which does not exist in "
                            f"{session.region_name}. Run crimecast sagemaker upsert first, or "
                            "pass --pipeline-name and --region of an existing pipeline.")
    events = session.client("events")
    fix = "The caller needs events:PutRule, events:PutTargets and iam:PassRole for --role-arn."
    existing = _aws_call("events:DescribeRule", fix, events.describe_rule,
                         absent=("ResourceNotFoundException",), Name=rule_name)
    rule = _aws_call("events:PutRule", fix, events.put_rule,
                     **rule_request(rule_name, expression, pipeline_name))
    pipeline_arn = str(pipeline["PipelineArn"])
    done = _aws_call("events:PutTargets", fix, events.put_targets,
                     **targets_request(rule_name, pipeline_arn, role_arn, parameters))
    if done.get("FailedEntryCount"):
        entry = done["FailedEntries"][0]
        raise PipelineError(f"events:PutTargets failed: {entry.get('ErrorCode')}: "
                            f"{str(entry.get('ErrorMessage', '')).rstrip('.')}. {fix}")
    return Scheduled(rule_arn=str(rule["RuleArn"]), created=existing is None,
                     pipeline_arn=pipeline_arn)
