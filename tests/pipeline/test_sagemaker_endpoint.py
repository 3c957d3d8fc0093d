"""``crimecast sagemaker export-endpoint|deploy|schedule``.

The export runs offline (no credentials, sockets and client creation refused) and every
request it writes is checked against botocore's service models: ParamValidator
(required and unknown members, types, minimums) and, here, the models' maximums,
patterns and enums too. ``deploy`` and ``schedule`` run against moto (SageMaker,
Application Auto Scaling, EventBridge, STS). Moto 5.2.5 has no UpdateEndpoint: the
update path goes through botocore's client-side validation and then a test hook that
applies it to moto's endpoint (see ``update_hook``).
"""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from crimecast.cli import app
from crimecast.pipeline.sagemaker_endpoint import EndpointDefinition
from crimecast.pipeline.sagemaker_schedule import rule_request, targets_request

moto = pytest.importorskip("moto")

ACCOUNT = "123456789012"  # moto's account
REGION = "us-west-2"
BUCKET = "crimecast-capture"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/CrimecastSageMaker"
EVENTS_ROLE = f"arn:aws:iam::{ACCOUNT}:role/CrimecastEventBridge"
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/crimecast:0.1.0"
ENDPOINT = "crimecast-hotspots"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"
CHAMPION_ID = f"endpoint/{ENDPOINT}/variant/champion"
CHALLENGER_ID = f"endpoint/{ENDPOINT}/variant/challenger"


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def _said(result: Any) -> str:
    return " ".join(result.output.split())


def _validate(service: str, operation: str, request: dict[str, Any]) -> None:
    """botocore's own validation, then the maximums, patterns and enums it leaves to AWS."""
    import botocore.session
    from botocore.validate import ParamValidator

    shape = botocore.session.get_session().get_service_model(service).operation_model(
        operation).input_shape
    report = ParamValidator().validate(request, shape)
    assert not report.has_errors(), report.generate_report()
    problems: list[str] = []
    _check_constraints(request, shape, operation, problems)
    assert problems == []


def _check_constraints(value: Any, shape: Any, path: str, problems: list[str]) -> None:
    meta = shape.metadata
    if shape.type_name == "structure":
        for key, item in value.items():
            _check_constraints(item, shape.members[key], f"{path}.{key}", problems)
    elif shape.type_name == "list":
        if len(value) > meta.get("max", len(value)):
            problems.append(f"{path}: {len(value)} items > {meta['max']}")
        for i, item in enumerate(value):
            _check_constraints(item, shape.member, f"{path}[{i}]", problems)
    elif shape.type_name == "string":
        if len(value) > meta.get("max", len(value)):
            problems.append(f"{path}: {len(value)} characters > {meta['max']}")
        if "enum" in meta and value not in meta["enum"]:
            problems.append(f"{path}: {value!r} not in the enum")
        if "pattern" in meta:
            try:  # Java regexes; ResourceId's surrogate ranges do not compile in Python
                pattern = re.compile(meta["pattern"].replace(r"\p{Print}", r"[\x20-\x7e]"))
            except re.error:
                return
            if not pattern.fullmatch(value):
                problems.append(f"{path}: {value!r} does not match {meta['pattern']}")
    elif shape.type_name in ("integer", "long", "double", "float") and "max" in meta \
            and value > meta["max"]:
        problems.append(f"{path}: {value} > {meta['max']}")


def _definition(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No AWS variables or files, no socket connection and no boto3 client may be made."""
    import botocore.session

    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"the export tried to reach AWS: {args[1:]!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(botocore.session.Session, "create_client", refuse)


def test_export_endpoint_is_offline_and_fits_the_boto3_request_shapes(
        offline: None, tmp_path: Path) -> None:
    out = tmp_path / "endpoint.json"
    result = _invoke("sagemaker", "export-endpoint", "--out", str(out), "--bucket", BUCKET,
                     "--region", REGION, "--champion-model", "crimecast-v7",
                     "--challenger-model", "crimecast-v8", "--challenger-weight", "0.25",
                     "--challenger-instance-type", "ml.c5.xlarge", "--min-instances", "2",
                     "--max-instances", "6", "--champion-instances", "3",
                     "--invocations-per-instance", "120", "--capture-percent", "20")
    assert result.exit_code == 0, result.output
    assert _said(result) == (f"wrote {out}: endpoint '{ENDPOINT}' in {REGION} (champion "
                             "crimecast-v7 75%, challenger crimecast-v8 25%)")
    written = _definition(out)
    config = dict(written["CreateEndpointConfig"])
    assert re.fullmatch(rf"{ENDPOINT}-[0-9a-f]{{10}}", config.pop("EndpointConfigName"))
    assert config == {
        "ProductionVariants": [
            {"VariantName": "champion", "ModelName": "crimecast-v7",
             "InstanceType": "ml.m5.large", "InitialInstanceCount": 3,
             "InitialVariantWeight": 0.75},
            {"VariantName": "challenger", "ModelName": "crimecast-v8",
             "InstanceType": "ml.c5.xlarge", "InitialInstanceCount": 2,
             "InitialVariantWeight": 0.25}],
        "DataCaptureConfig": {
            "EnableCapture": True, "InitialSamplingPercentage": 20,
            "DestinationS3Uri": f"s3://{BUCKET}/crimecast/capture/",
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"],
                                         "JsonContentTypes": ["application/json"]}}}
    assert written["RegisterScalableTarget"] == [
        {"ServiceNamespace": "sagemaker", "ResourceId": resource, "ScalableDimension": DIMENSION,
         "MinCapacity": 2, "MaxCapacity": 6} for resource in (CHAMPION_ID, CHALLENGER_ID)]
    assert written["PutScalingPolicy"] == [
        {"PolicyName": f"{variant}-invocations-per-instance", "ServiceNamespace": "sagemaker",
         "ResourceId": resource, "ScalableDimension": DIMENSION,
         "PolicyType": "TargetTrackingScaling",
         "TargetTrackingScalingPolicyConfiguration": {
             "TargetValue": 120.0,
             "PredefinedMetricSpecification": {
                 "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
             "ScaleInCooldown": 300, "ScaleOutCooldown": 60}}
        for variant, resource in (("champion", CHAMPION_ID), ("challenger", CHALLENGER_ID))]
    assert (written["Format"], written["Region"], written["EndpointName"],
            written["Placeholders"]) == ("crimecast-sagemaker-endpoint/1", REGION, ENDPOINT, [])
    _validate("sagemaker", "CreateEndpointConfig", written["CreateEndpointConfig"])
    for request in written["RegisterScalableTarget"]:
        _validate("application-autoscaling", "RegisterScalableTarget", request)
    for request in written["PutScalingPolicy"]:
        _validate("application-autoscaling", "PutScalingPolicy", request)
    _validate("sagemaker", "CreateEndpoint", {"EndpointName": ENDPOINT,
                                              "EndpointConfigName": "x"})


def test_export_endpoint_defaults_one_variant_and_marks_placeholders(
        offline: None, tmp_path: Path) -> None:
    out = tmp_path / "endpoint.json"
    result = _invoke("sagemaker", "export-endpoint", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert ("placeholders used for --bucket (account 111122223333); pass real values before "
            "deploying.") in _said(result)
    written = _definition(out)
    assert written["CreateEndpointConfig"]["ProductionVariants"] == [
        {"VariantName": "champion", "ModelName": "crimecast-champion",
         "InstanceType": "ml.m5.large", "InitialInstanceCount": 1, "InitialVariantWeight": 1.0}]
    assert written["CreateEndpointConfig"]["DataCaptureConfig"]["DestinationS3Uri"] == \
        "s3://sagemaker-us-west-2-111122223333/crimecast/capture/"
    assert [r["ResourceId"] for r in written["RegisterScalableTarget"]] == [CHAMPION_ID]
    assert [(r["MinCapacity"], r["MaxCapacity"]) for r in written["RegisterScalableTarget"]] == \
        [(1, 4)]
    assert written["Placeholders"] == ["--bucket"]
    _validate("sagemaker", "CreateEndpointConfig", written["CreateEndpointConfig"])


def test_capture_percent_zero_turns_capture_off(offline: None, tmp_path: Path) -> None:
    out = tmp_path / "endpoint.json"
    assert _invoke("sagemaker", "export-endpoint", "--out", str(out), "--bucket", BUCKET,
                   "--capture-percent", "0").exit_code == 0
    assert "DataCaptureConfig" not in _definition(out)["CreateEndpointConfig"]
    _validate("sagemaker", "CreateEndpointConfig", _definition(out)["CreateEndpointConfig"])


def test_schedule_requests_fit_the_events_request_shapes() -> None:
    arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/crimecast"
    rule = rule_request("crimecast-schedule", "cron(0 6 ? * MON *)", "crimecast")
    assert rule == {"Name": "crimecast-schedule", "ScheduleExpression": "cron(0 6 ? * MON *)",
                    "State": "ENABLED",
                    "Description": "Starts the SageMaker pipeline crimecast (crimecast)."}
    _validate("events", "PutRule", rule)
    targets = targets_request("crimecast-schedule", arn, EVENTS_ROLE,
                              {"ModelType": "xgboost", "UseSmote": "true"})
    assert targets == {"Rule": "crimecast-schedule", "Targets": [{
        "Id": "sagemaker-pipeline", "Arn": arn, "RoleArn": EVENTS_ROLE,
        "SageMakerPipelineParameters": {"PipelineParameterList": [
            {"Name": "ModelType", "Value": "xgboost"}, {"Name": "UseSmote", "Value": "true"}]}}]}
    _validate("events", "PutTargets", targets)
    bare = targets_request("crimecast-schedule", arn, EVENTS_ROLE, {})
    assert "SageMakerPipelineParameters" not in bare["Targets"][0]
    _validate("events", "PutTargets", bare)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    import boto3

    for key in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(key, value)
    with moto.mock_aws():
        session = boto3.Session(region_name=REGION)
        for name in ("crimecast-v7", "crimecast-v8", "crimecast-v9"):
            session.client("sagemaker").create_model(
                ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": IMAGE})
        yield session


@pytest.fixture
def update_hook(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """UpdateEndpoint for moto, which lacks it: the sessions deploy makes validate the request
    client-side as ever (botocore), then this hook records it and points moto's endpoint at
    the new config (moto's own CreateEndpoint logic rebuilds the variants from it)."""
    import boto3
    from botocore.awsrequest import AWSResponse
    from moto.sagemaker.models import sagemaker_backends

    import crimecast.pipeline.sagemaker_aws as sagemaker_aws

    calls: list[dict[str, Any]] = []

    def update(params: dict[str, Any], **kwargs: Any) -> tuple[AWSResponse, dict[str, Any]]:
        request = json.loads(params["body"])
        calls.append(request)
        backend = sagemaker_backends[ACCOUNT][REGION]
        tags = backend.endpoints[request["EndpointName"]].tags
        endpoint = backend.create_endpoint(request["EndpointName"],
                                           request["EndpointConfigName"], tags)
        return AWSResponse("", 200, {}, None), {"EndpointArn": endpoint.arn}

    def session(region: str | None) -> Any:
        made = boto3.Session(region_name=region)
        made.events.register("before-call.sagemaker.UpdateEndpoint", update)
        return made

    monkeypatch.setattr(sagemaker_aws, "aws_session", session)
    return calls


def _export(tmp_path: Path, name: str, *flags: str) -> Path:
    out = tmp_path / name
    result = _invoke("sagemaker", "export-endpoint", "--out", str(out), "--bucket", BUCKET,
                     "--champion-model", "crimecast-v7", *flags)
    assert result.exit_code == 0, result.output
    return out


def _deploy(*args: str) -> Any:
    return _invoke("sagemaker", "deploy", *args)


def _autoscaling(aws: Any) -> dict[str, Any]:
    client = aws.client("application-autoscaling")
    targets = client.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    policies = client.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    return {"targets": {t["ResourceId"]: (t["MinCapacity"], t["MaxCapacity"]) for t in targets},
            "policies": {(p["ResourceId"], p["PolicyName"]): p[
                "TargetTrackingScalingPolicyConfiguration"]["TargetValue"] for p in policies}}


def test_deploy_creates_leaves_unchanged_then_updates(
        aws: Any, update_hook: list[dict[str, Any]], tmp_path: Path) -> None:
    sagemaker = aws.client("sagemaker")
    first = _export(tmp_path, "first.json", "--challenger-model", "crimecast-v8")
    created = _deploy("--definition", str(first))
    assert created.exit_code == 0, created.output
    config_name = sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]
    request = _definition(first)["CreateEndpointConfig"]
    assert re.fullmatch(rf"{request['EndpointConfigName']}-\d{{8}}-\d{{6}}", config_name)
    assert _said(created) == (
        f"created endpoint arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{ENDPOINT} (InService) "
        f"with endpoint config {config_name} champion: crimecast-v7 on 1 x ml.m5.large, 90% of "
        "traffic challenger: crimecast-v8 on 1 x ml.m5.large, 10% of traffic autoscaling "
        f"{CHAMPION_ID}, {CHALLENGER_ID}: 1-4 instances, target 200 invocations per instance "
        "per minute")
    described = sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
    assert described["ProductionVariants"] == request["ProductionVariants"]
    assert described["DataCaptureConfig"] == request["DataCaptureConfig"]
    endpoint = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    assert [(v["VariantName"], v["DesiredWeight"]) for v in endpoint["ProductionVariants"]] == \
        [("champion", 0.9), ("challenger", 0.1)]
    assert _autoscaling(aws) == {
        "targets": {CHAMPION_ID: (1, 4), CHALLENGER_ID: (1, 4)},
        "policies": {(CHAMPION_ID, "champion-invocations-per-instance"): 200.0,
                     (CHALLENGER_ID, "challenger-invocations-per-instance"): 200.0}}

    again = _deploy("--definition", str(first))
    assert again.exit_code == 0, again.output
    assert _said(again).startswith(f"unchanged endpoint arn:aws:sagemaker:{REGION}:{ACCOUNT}:"
                                   f"endpoint/{ENDPOINT} (InService) with endpoint config "
                                   f"{config_name}")
    assert len(sagemaker.list_endpoint_configs()["EndpointConfigs"]) == 1
    assert update_hook == []

    # The challenger moves to another instance type and gets more traffic: its scalable
    # target must go before UpdateEndpoint (AWS refuses the update otherwise).
    second = _export(tmp_path, "second.json", "--challenger-model", "crimecast-v9",
                     "--challenger-weight", "0.3", "--challenger-instance-type", "ml.c5.large",
                     "--invocations-per-instance", "300")
    updated = _deploy("--definition", str(second))
    assert updated.exit_code == 0, updated.output
    new_config = sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]
    assert new_config != config_name
    assert update_hook == [{"EndpointName": ENDPOINT, "EndpointConfigName": new_config}]
    said = _said(updated)
    assert said.startswith(f"updated endpoint arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/"
                           f"{ENDPOINT} (InService) with endpoint config {new_config}")
    assert (f"challenger: crimecast-v9 on 1 x ml.c5.large, 30% of traffic deregistered "
            f"{CHALLENGER_ID} from autoscaling before the update") in said
    assert "target 300 invocations per instance per minute" in said
    endpoint = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    assert [(v["VariantName"], v["DesiredWeight"]) for v in endpoint["ProductionVariants"]] == \
        [("champion", 0.7), ("challenger", 0.3)]
    assert _autoscaling(aws)["policies"] == {
        (CHAMPION_ID, "champion-invocations-per-instance"): 300.0,
        (CHALLENGER_ID, "challenger-invocations-per-instance"): 300.0}

    # Promote: the champion alone; the challenger's autoscaling is removed with it.
    third = _export(tmp_path, "third.json")
    alone = _deploy("--definition", str(third))
    assert alone.exit_code == 0, alone.output
    assert f"deregistered {CHALLENGER_ID} from autoscaling before the update" in _said(alone)
    assert len(update_hook) == 2
    assert _autoscaling(aws) == {
        "targets": {CHAMPION_ID: (1, 4)},
        "policies": {(CHAMPION_ID, "champion-invocations-per-instance"): 200.0}}
    endpoint = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    assert [(v["VariantName"], v["DesiredWeight"]) for v in endpoint["ProductionVariants"]] == \
        [("champion", 1.0)]


def test_deploy_from_flags_defaults_the_bucket_to_the_account(
        aws: Any, update_hook: list[dict[str, Any]]) -> None:
    result = _deploy("--champion-model", "crimecast-v7", "--endpoint-name", "hotspots-eu",
                     "--no-wait")
    assert result.exit_code == 0, result.output
    described = aws.client("sagemaker").describe_endpoint(EndpointName="hotspots-eu")
    config = aws.client("sagemaker").describe_endpoint_config(
        EndpointConfigName=described["EndpointConfigName"])
    assert config["DataCaptureConfig"]["DestinationS3Uri"] == \
        f"s3://sagemaker-{REGION}-{ACCOUNT}/crimecast/capture/"
    # moto's endpoints are InService at once, so autoscaling applies even with --no-wait.
    assert _autoscaling(aws)["targets"] == {"endpoint/hotspots-eu/variant/champion": (1, 4)}


def test_deploy_waits_for_a_busy_endpoint_to_settle(aws: Any, tmp_path: Path) -> None:
    from moto.sagemaker.models import sagemaker_backends

    definition = _export(tmp_path, "endpoint.json")
    assert _deploy("--definition", str(definition)).exit_code == 0
    sagemaker_backends[ACCOUNT][REGION].endpoints[ENDPOINT].endpoint_status = "Updating"
    result = _deploy("--definition", str(definition))
    assert result.exit_code == 2
    assert _said(result) == (
        f"error: endpoint {ENDPOINT} must be in service to deploy; got status Updating. Wait "
        f"(aws sagemaker wait endpoint-in-service --endpoint-name {ENDPOINT}) and deploy again.")


def test_deploy_needs_the_models_to_exist(aws: Any, tmp_path: Path) -> None:
    definition = _export(tmp_path, "endpoint.json", "--challenger-model", "crimecast-v10")
    result = _deploy("--definition", str(definition))
    assert result.exit_code == 2
    assert _said(result) == (
        f"error: --challenger-model must name an existing SageMaker model in {REGION}; got "
        "'crimecast-v10', which does not exist. Create it from the approved model package (aws "
        "sagemaker create-model --model-name crimecast-v10 --primary-container "
        "ModelPackageName=ARN --execution-role-arn ROLE) or pass --challenger-model with an "
        "existing model.")
    assert aws.client("sagemaker").list_endpoint_configs()["EndpointConfigs"] == []


def test_deploy_refuses_placeholders_and_mixed_flags(aws: Any, tmp_path: Path) -> None:
    out = tmp_path / "endpoint.json"
    assert _invoke("sagemaker", "export-endpoint", "--out", str(out)).exit_code == 0
    result = _deploy("--definition", str(out))
    assert result.exit_code == 2
    assert _said(result) == (
        "error: deploy needs real values for --bucket; the definition holds placeholders for "
        "offline export. Export it again with them, or deploy with flags (--bucket then "
        "defaults to sagemaker-REGION-ACCOUNT).")
    mixed = _deploy("--definition", str(out), "--challenger-weight", "0.2")
    assert mixed.exit_code == 2
    assert _said(mixed) == (
        "error: --definition and --challenger-weight exclude each other; got both. Pass the "
        "flags to export-endpoint, or deploy without --definition.")


@pytest.mark.parametrize(("edit", "message"), [
    (lambda text: text[:-3], "must be JSON; got Expecting ',' delimiter at line {lines}."),
    (lambda text: text.replace('"crimecast-sagemaker-endpoint/1"', '"v2"'),
     "must be a crimecast endpoint definition (Format 'crimecast-sagemaker-endpoint/1'); got "
     "Format 'v2'."),
    (lambda text: text.replace('"InitialInstanceCount": 1', '"InitialInstanceCount": "one"'),
     "must hold a valid CreateEndpointConfig request; got Invalid type for parameter "
     "ProductionVariants[0].InitialInstanceCount, value: one, type: <class 'str'>, valid "
     "types: <class 'int'>."),
    (lambda text: text.replace('"MinCapacity": 1', '"MinCapacity": 1, "Capacity": 2'),
     'must hold a valid RegisterScalableTarget request; got Unknown parameter in input: '
     '"Capacity", must be one of: ServiceNamespace, ResourceId, ScalableDimension, MinCapacity, '
     "MaxCapacity, RoleARN, SuspendedState, Tags."),
    (lambda text: text.replace(f'"ResourceId": "{CHAMPION_ID}",\n      "Scalable',
                               '"ResourceId": "endpoint/other/variant/champion",\n      '
                               '"Scalable'),
     f"must have one RegisterScalableTarget request per variant ({CHAMPION_ID}); got "
     "endpoint/other/variant/champion. Export it again with crimecast sagemaker "
     "export-endpoint."),
])
def test_deploy_checks_the_definition_file(edit: Any, message: str, offline: None,
                                          tmp_path: Path) -> None:
    out = _export(tmp_path, "endpoint.json")
    text = edit(out.read_text())
    out.write_text(text)
    result = _deploy("--definition", str(out))
    assert result.exit_code == 2, result.output
    fix = "" if message.endswith("export-endpoint.") else (
        " Pass a file written by crimecast sagemaker export-endpoint.")
    expected = f"error: --definition '{out}' " + message.format(
        lines=len(text.splitlines())) + fix
    assert _said(result) == expected


@pytest.fixture
def pipeline(aws: Any) -> str:
    created = aws.client("sagemaker").create_pipeline(
        PipelineName="crimecast", RoleArn=ROLE,
        PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": []}))
    return str(created["PipelineArn"])


def test_schedule_creates_then_updates_the_rule(aws: Any, pipeline: str) -> None:
    result = _invoke("sagemaker", "schedule", "--cron", "cron(0 6 ? * MON *)", "--role-arn",
                     EVENTS_ROLE, "--region", REGION, "--param", "ModelType=xgboost",
                     "--param", "UseSmote=TRUE")
    assert result.exit_code == 0, result.output
    rule_arn = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/crimecast-schedule"
    assert _said(result) == (f"created rule {rule_arn}: cron(0 6 ? * MON *) starts {pipeline} "
                             "ModelType = xgboost UseSmote = true")
    events = aws.client("events")
    rule = events.describe_rule(Name="crimecast-schedule")
    assert (rule["ScheduleExpression"], rule["State"]) == ("cron(0 6 ? * MON *)", "ENABLED")
    assert events.list_targets_by_rule(Rule="crimecast-schedule")["Targets"] == [{
        "Id": "sagemaker-pipeline", "Arn": pipeline, "RoleArn": EVENTS_ROLE,
        "SageMakerPipelineParameters": {"PipelineParameterList": [
            {"Name": "ModelType", "Value": "xgboost"}, {"Name": "UseSmote", "Value": "true"}]}}]

    again = _invoke("sagemaker", "schedule", "--cron", "rate(1 day)", "--role-arn",
                    EVENTS_ROLE, "--region", REGION)
    assert again.exit_code == 0, again.output
    assert _said(again) == f"updated rule {rule_arn}: rate(1 day) starts {pipeline}"
    assert events.describe_rule(Name="crimecast-schedule")["ScheduleExpression"] == "rate(1 day)"
    assert events.list_targets_by_rule(Rule="crimecast-schedule")["Targets"] == [{
        "Id": "sagemaker-pipeline", "Arn": pipeline, "RoleArn": EVENTS_ROLE}]


def test_schedule_needs_an_existing_pipeline(aws: Any) -> None:
    result = _invoke("sagemaker", "schedule", "--cron", "rate(7 days)", "--role-arn",
                     EVENTS_ROLE, "--pipeline-name", "nowhere", "--region", REGION)
    assert result.exit_code == 2
    assert _said(result) == (
        "error: --pipeline-name must name an existing SageMaker pipeline; got 'nowhere', which "
        f"does not exist in {REGION}. Run crimecast sagemaker upsert first, or pass "
        "--pipeline-name and --region of an existing pipeline.")
    with pytest.raises(aws.client("events").exceptions.ResourceNotFoundException):
        aws.client("events").describe_rule(Name="nowhere-schedule")


CRON_FIX = 'Pass e.g. --cron "cron(0 6 ? * MON *)".'


@pytest.mark.parametrize(("args", "message"), [
    (["export-endpoint", "--challenger-model", "v8", "--challenger-weight", "1.5"],
     "--challenger-weight must be >= 0 and <= 1 (the challenger's share of traffic); got 1.5. "
     "Pass e.g. --challenger-weight 0.1."),
    (["export-endpoint", "--challenger-weight", "0.3"],
     "--challenger-weight needs --challenger-model; got --challenger-weight without a "
     "challenger. Pass --challenger-model NAME or leave --challenger-weight out."),
    (["export-endpoint", "--champion-model", "crimecast_v7"],
     "--champion-model must be 1-63 letters, digits or hyphens, starting and ending with a "
     "letter or digit; got 'crimecast_v7'. Pass e.g. --champion-model crimecast-champion."),
    (["export-endpoint", "--endpoint-name", "-hotspots"],
     "--endpoint-name must be 1-63 letters, digits or hyphens, starting and ending with a "
     "letter or digit; got '-hotspots'. Pass e.g. --endpoint-name crimecast-hotspots."),
    (["export-endpoint", "--min-instances", "0"],
     "--min-instances must be >= 1; got 0. Pass --min-instances 1."),
    (["export-endpoint", "--min-instances", "3", "--max-instances", "2"],
     "--max-instances must be >= --min-instances (3); got 2. Pass --max-instances 3 or more."),
    (["export-endpoint", "--champion-instances", "5"],
     "--champion-instances must be between --min-instances (1) and --max-instances (4); got 5. "
     "Pass --champion-instances 1 or change --min-instances/--max-instances."),
    (["export-endpoint", "--invocations-per-instance", "0"],
     "--invocations-per-instance must be > 0 (invocations per instance per minute); got 0.0. "
     "Pass e.g. --invocations-per-instance 200."),
    (["export-endpoint", "--scale-in-cooldown", "-5"],
     "--scale-in-cooldown must be >= 0; got -5. Pass e.g. --scale-in-cooldown 300."),
    (["export-endpoint", "--capture-percent", "101"],
     "--capture-percent must be between 0 and 100; got 101. Pass --capture-percent 100 (0 "
     "turns capture off)."),
    (["export-endpoint", "--challenger-model", "v8", "--challenger-instance-type", "c5.large"],
     "--challenger-instance-type must be a SageMaker instance type such as ml.m5.xlarge; got "
     "'c5.large'. Pass --challenger-instance-type ml.m5.xlarge."),
    (["export-endpoint", "--bucket", "s3://my-bucket/capture"],
     "--bucket takes a bucket name, not an S3 URI; got 's3://my-bucket/capture'. Pass --bucket "
     "my-bucket."),
    (["export-endpoint", "--region", "mars-1"],
     "--region must be an AWS region where SageMaker runs, such as us-west-2; got 'mars-1'. "
     "Pass --region us-west-2."),
    (["deploy", "--champion-model", "v7", "--challenger-weight", "-0.1",
      "--challenger-model", "v8"],
     "--challenger-weight must be >= 0 and <= 1 (the challenger's share of traffic); got -0.1. "
     "Pass e.g. --challenger-weight 0.1."),
    (["deploy", "--definition", "no-such-definition.json"],
     "--definition must be a readable file; got 'no-such-definition.json' (No such file or "
     "directory). Write it with crimecast sagemaker export-endpoint --out FILE."),
    (["schedule", "--cron", "0 6 * * 1", "--role-arn", EVENTS_ROLE],
     "--cron must be an EventBridge schedule expression, cron(MINUTES HOURS DAY-OF-MONTH MONTH "
     f"DAY-OF-WEEK YEAR) or rate(VALUE UNIT); got '0 6 * * 1'. {CRON_FIX}"),
    (["schedule", "--cron", "cron(0 6 * * 1)", "--role-arn", EVENTS_ROLE],
     "--cron must have 6 fields in cron(...): minutes hours day-of-month month day-of-week "
     f"year; got 5 in 'cron(0 6 * * 1)'. {CRON_FIX}"),
    (["schedule", "--cron", "cron(0 6 * * MON *)", "--role-arn", EVENTS_ROLE],
     "--cron must have ? in exactly one of day-of-month and day-of-week; got "
     f"'cron(0 6 * * MON *)'. {CRON_FIX}"),
    (["schedule", "--cron", "cron(0 25 ? * MON *)", "--role-arn", EVENTS_ROLE],
     "--cron field hours must be 0-23 (with , - * /); got '25' in 'cron(0 25 ? * MON *)'. "
     f"{CRON_FIX}"),
    (["schedule", "--cron", "cron(0 6 ? * MONDAY *)", "--role-arn", EVENTS_ROLE],
     "--cron field day-of-week must be 1-7 or SUN-SAT (with , - * / ? L #); got 'MONDAY' in "
     f"'cron(0 6 ? * MONDAY *)'. {CRON_FIX}"),
    (["schedule", "--cron", "rate(1 days)", "--role-arn", EVENTS_ROLE],
     "--cron must be rate(VALUE UNIT) with a whole VALUE >= 1 and UNIT minute, hour or day "
     "(plural when VALUE > 1); got 'rate(1 days)'. Pass e.g. --cron \"rate(7 days)\"."),
    (["schedule", "--cron", "rate(7 days)", "--role-arn", "EventBridgeRole"],
     "--role-arn must be an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME); got "
     "'EventBridgeRole'. Pass the ARN of a role EventBridge (events.amazonaws.com) can assume, "
     "allowed sagemaker:StartPipelineExecution."),
    (["schedule", "--cron", "rate(7 days)", "--role-arn", EVENTS_ROLE, "--pipeline-name",
      "crime_cast"],
     "--pipeline-name must be 1-256 letters, digits or single hyphens, starting with a letter "
     "or digit; got 'crime_cast'. Pass --pipeline-name crimecast."),
    (["schedule", "--cron", "rate(7 days)", "--role-arn", EVENTS_ROLE, "--rule-name",
      "weekly run"],
     "--rule-name must be 1-64 letters, digits, dots, hyphens or underscores; got 'weekly "
     "run'. Pass e.g. --rule-name crimecast-schedule."),
    (["schedule", "--cron", "rate(7 days)", "--role-arn", EVENTS_ROLE, "--param",
      "ModelType=resnet"],
     "--param ModelType must be one of balanced_random_forest, catboost, extra_trees, lightgbm, "
     "logistic, random_forest, xgboost; got 'resnet'. Pass e.g. --param ModelType=xgboost."),
])
def test_bad_flags_get_one_clear_message(args: list[str], message: str, offline: None,
                                         tmp_path: Path) -> None:
    if args[0] == "export-endpoint":
        args = [*args, "--out", str(tmp_path / "endpoint.json")]
    result = _invoke("sagemaker", *args)
    assert result.exit_code == 2, result.output
    assert _said(result) == f"error: {message}"


@pytest.mark.parametrize("expression", [
    "cron(0 6 ? * MON *)", "cron(15 10 ? * 6L 2022-2030)", "cron(0/15 * * * ? *)",
    "cron(0 8 1 JAN-DEC ? *)", "cron(0 12 L * ? *)", "cron(0 9 ? * 2#1 *)",
    "cron(0 18 ? * MON-FRI *)", "cron(5,35 14 LW * ? *)", "rate(1 minute)", "rate(12 hours)",
])
def test_schedule_expressions_eventbridge_documents_are_accepted(expression: str) -> None:
    from crimecast.pipeline.sagemaker_schedule import check_schedule_expression

    assert check_schedule_expression(expression) == expression


def test_definition_round_trips(offline: None, tmp_path: Path) -> None:
    out = _export(tmp_path, "endpoint.json", "--challenger-model", "crimecast-v8")
    definition = EndpointDefinition.from_json(out.read_text(), str(out))
    assert definition.to_json() == out.read_text()
    assert definition.config_base() == _definition(out)["CreateEndpointConfig"][
        "EndpointConfigName"]
