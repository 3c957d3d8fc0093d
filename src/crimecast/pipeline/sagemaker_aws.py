"""The AWS edge of the SageMaker integration: upload the bundle, upsert, start, model cards.

These are the only functions that call AWS (through boto3, with the caller's
credentials). The definition they send is exactly what ``crimecast sagemaker
export`` writes, built offline by :mod:`crimecast.pipeline.sagemaker`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from crimecast.errors import ConfigError, DependencyError, PipelineError
from crimecast.pipeline.container_io import BUNDLE_FILE, PipelineBundle, parse_bool, parse_float
from crimecast.pipeline.sagemaker import PARAMETERS
from crimecast.pipeline.sagemaker_target import SageMakerTarget

logger = logging.getLogger(__name__)

MAX_INLINE_DEFINITION = 100 * 1024  # CreatePipeline's limit for PipelineDefinition
MAX_MODEL_CARD = 100_000  # CreateModelCard's limit for Content, in characters
TRIMMABLE_GROUPS = ("curves", "per_area")


@dataclass(frozen=True)
class Upserted:
    """What ``upsert`` did."""

    pipeline_arn: str
    created: bool
    bundle_uri: str


def aws_session(region: str | None) -> Any:
    """A boto3 session on the caller's credential chain, in ``region`` (None: its default)."""
    try:
        import boto3
    except ImportError:
        raise DependencyError("boto3 is not installed. Run pip install 'crimecast[aws]'.") \
            from None
    return boto3.Session(region_name=region)


CREDENTIALS_FIX = "Configure AWS credentials (aws configure, AWS_PROFILE or an instance role)."


def _aws_call(what: str, fix: str, call: Any, absent: tuple[str, ...] = (),
              **kwargs: Any) -> Any:
    """Call AWS; turn its errors into one PipelineError naming the call and the fix.

    Error codes in ``absent`` mean "no such resource" and return None.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return call(**kwargs)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") in absent:
            return None
        message = str(error.get("Message", "")).rstrip(".")
        raise PipelineError(f"{what} failed: {error.get('Code')}: {message}. {fix}") from None
    except BotoCoreError as exc:
        raise PipelineError(f"{what} failed: {exc}. {CREDENTIALS_FIX}") from None


def account_id(session: Any) -> str:
    """The caller's AWS account id (STS GetCallerIdentity)."""
    identity = _aws_call("sts:GetCallerIdentity", CREDENTIALS_FIX,
                         session.client("sts").get_caller_identity)
    return str(identity["Account"])


def upload_bundle(session: Any, target: SageMakerTarget, bundle: PipelineBundle) -> str:
    """Put ``pipeline_config.json`` at its content-addressed key; return its S3 URI."""
    key = f"{target.prefix}/code/{bundle.digest()}/{BUNDLE_FILE}"
    fix = (f"Create the bucket (aws s3 mb s3://{target.bucket} --region {target.region}) or "
           "pass --bucket with one the caller can write to.")
    _aws_call(f"uploading s3://{target.bucket}/{key}", fix, session.client("s3").put_object,
              Bucket=target.bucket, Key=key, Body=bundle.to_bytes(),
              ContentType="application/json")
    return f"s3://{target.bucket}/{key}"


def upsert_pipeline(session: Any, target: SageMakerTarget, bundle: PipelineBundle,
                    definition: str, description: str | None = None) -> Upserted:
    """Upload the bundle, then create the pipeline or update it if it exists."""
    if target.placeholders:
        raise ConfigError(f"upsert needs real values for {', '.join(target.placeholders)}; "
                          "the defaults are placeholders for offline export. Pass them.")
    bundle_uri = upload_bundle(session, target, bundle)
    client = session.client("sagemaker")
    request: dict[str, Any] = {"PipelineName": target.pipeline_name,
                               "RoleArn": target.role_arn}
    if description:
        request["PipelineDescription"] = description
    body = definition.encode()
    if len(body) < MAX_INLINE_DEFINITION:
        request["PipelineDefinition"] = definition
    else:
        key = f"{target.prefix}/definitions/{hashlib.sha256(body).hexdigest()[:16]}.json"
        _aws_call("uploading the definition", "Check that the caller can write to the bucket.",
                  session.client("s3").put_object,
                  Bucket=target.bucket, Key=key, Body=body)
        request["PipelineDefinitionS3Location"] = {"Bucket": target.bucket, "ObjectKey": key}
    exists = _pipeline_exists(client, target.pipeline_name)
    fix = "Check --role-arn and the caller's sagemaker:CreatePipeline/UpdatePipeline rights."
    if exists:
        response = _aws_call("sagemaker:UpdatePipeline", fix, client.update_pipeline, **request)
    else:
        response = _aws_call("sagemaker:CreatePipeline", fix, client.create_pipeline, **request)
    return Upserted(pipeline_arn=response["PipelineArn"], created=not exists,
                    bundle_uri=bundle_uri)


def _pipeline_exists(client: Any, name: str) -> bool:
    # SageMaker answers ResourceNotFound for a missing pipeline; moto ValidationException.
    found = _aws_call("sagemaker:DescribePipeline", "Check the caller's sagemaker rights.",
                      client.describe_pipeline, absent=("ResourceNotFound",
                                                        "ValidationException"),
                      PipelineName=name)
    return found is not None


def parse_params(items: Sequence[str]) -> dict[str, str]:
    """``NAME=VALUE`` overrides for the pipeline parameters, checked and formatted."""
    from crimecast.models.estimators import ESTIMATORS

    parsed: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise ConfigError(f"--param must be NAME=VALUE; got '{item}'. Pass e.g. --param "
                              "ModelType=xgboost.")
        if name not in PARAMETERS:
            raise ConfigError(f"--param names an unknown pipeline parameter '{name}'; the "
                              f"pipeline has {', '.join(PARAMETERS)}. Pass e.g. --param "
                              "ModelType=xgboost.")
        parsed[name] = _check_param(name, value, sorted(ESTIMATORS))
    return parsed


def _check_param(name: str, value: str, model_types: list[str]) -> str:
    if name == "ModelType":
        if value not in model_types:
            raise ConfigError(f"--param ModelType must be one of {', '.join(model_types)}; "
                              f"got '{value}'. Pass e.g. --param ModelType=xgboost.")
        return value
    if name == "UseSmote":
        return "true" if parse_bool(f"--param {name}", value) else "false"
    if name == "InputDataUri":
        if not value.startswith("s3://") or len(value) <= len("s3://"):
            raise ConfigError(f"--param InputDataUri must be an s3:// URI; got '{value}'. "
                              "Pass e.g. --param InputDataUri=s3://my-bucket/crimecast/data/.")
        return value
    number = parse_float(f"--param {name}", value)
    assert number is not None
    low_open = name == "TrainTestSplitRatio"
    if (low_open and not 0 < number < 1) or (not low_open and not 0 <= number <= 1):
        rule = "> 0 and < 1" if low_open else ">= 0 and <= 1"
        raise ConfigError(f"--param {name} must be {rule}; got {value}. Pass e.g. --param "
                          f"{name}={0.8 if low_open else 0.18}.")
    return str(number)


def start_execution(session: Any, pipeline_name: str, parameters: dict[str, str],
                    display_name: str | None = None) -> str:
    """Start an execution with parameter overrides; return its ARN."""
    request: dict[str, Any] = {
        "PipelineName": pipeline_name,
        "PipelineParameters": [{"Name": k, "Value": v} for k, v in parameters.items()]}
    if display_name:
        request["PipelineExecutionDisplayName"] = display_name
    client = session.client("sagemaker")
    fix = ("Run crimecast sagemaker upsert first, or pass --name and --region of an existing "
           "pipeline.")
    response = _aws_call("sagemaker:StartPipelineExecution", fix,
                         client.start_pipeline_execution, **request)
    return str(response["PipelineExecutionArn"])


def fit_model_card(content: dict[str, Any]) -> str:
    """Compact card JSON within CreateModelCard's limit, dropping bulky groups if needed.

    Curves and the per-area table are dropped first (the per-area disparity
    stays); the complete card remains in the job's output folder.
    """
    text = json.dumps(content, separators=(",", ":"))
    trimmed = copy.deepcopy(content)
    for name in TRIMMABLE_GROUPS:
        if len(text) <= MAX_MODEL_CARD:
            return text
        for details in trimmed.get("evaluation_details", []):
            details["metric_groups"] = [g for g in details.get("metric_groups", [])
                                        if g.get("name") != name]
        text = json.dumps(trimmed, separators=(",", ":"))
        logger.warning("the model card is over %d characters; left the '%s' metric group "
                       "out of the SageMaker model card (the job's output keeps it)",
                       MAX_MODEL_CARD, name)
    if len(text) > MAX_MODEL_CARD:
        raise PipelineError(f"the model card is {len(text)} characters even without "
                            f"{' and '.join(TRIMMABLE_GROUPS)}; SageMaker accepts at most "
                            f"{MAX_MODEL_CARD}. Use a coarser spatial unit.")
    return text


def publish_model_card(content: dict[str, Any], name: str, region: str | None) -> str:
    """Create a SageMaker model card (status Draft) from crimecast's card JSON."""
    client = aws_session(region).client("sagemaker")
    response = _aws_call("sagemaker:CreateModelCard",
                         "The job's execution role needs sagemaker:CreateModelCard.",
                         client.create_model_card,
                         ModelCardName=name, Content=fit_model_card(content),
                         ModelCardStatus="Draft")
    arn = str(response["ModelCardArn"])
    logger.info("created SageMaker model card %s", arn)
    return arn
