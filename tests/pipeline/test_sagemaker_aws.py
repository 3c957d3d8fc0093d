"""``crimecast sagemaker upsert|start`` against moto's SageMaker, S3 and STS; flag errors.

Moto records CreatePipeline/UpdatePipeline/StartPipelineExecution and stores the
definition and parameters; it does not run the jobs (see the README).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from crimecast.cli import app
from crimecast.config import load_settings
from crimecast.errors import PipelineError
from crimecast.pipeline.container_io import make_bundle
from crimecast.pipeline.sagemaker import definition_json
from crimecast.pipeline.sagemaker_aws import MAX_MODEL_CARD, fit_model_card
from crimecast.pipeline.sagemaker_target import make_target

moto = pytest.importorskip("moto")

REPO = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"  # moto's account
REGION = "us-west-2"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/CrimecastSageMaker"
BUCKET = f"sagemaker-{REGION}-{ACCOUNT}"


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def _said(result: Any) -> str:
    return " ".join(result.output.split())


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    import boto3

    for key in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(key, value)
    with moto.mock_aws():
        yield boto3.Session(region_name=REGION)


def _upsert(*extra: str) -> Any:
    return _invoke("sagemaker", "upsert", "--role-arn", ROLE, "--region", REGION,
                   "--config", str(REPO / "config"), *extra)


def test_upsert_uploads_the_bundle_and_creates_then_updates(aws: Any) -> None:
    aws.client("s3").create_bucket(Bucket=BUCKET,
                                   CreateBucketConfiguration={"LocationConstraint": REGION})
    first = _upsert()
    assert first.exit_code == 0, first.output
    assert f"created pipeline arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/crimecast" in \
        _said(first)

    settings = load_settings(REPO / "config")
    bundle = make_bundle(settings, settings.data.schema_name)
    image = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/crimecast:0.1.0"
    expected = definition_json(make_target(region=REGION, role_arn=ROLE, account=ACCOUNT),
                               bundle)
    described = aws.client("sagemaker").describe_pipeline(PipelineName="crimecast")
    assert described["RoleArn"] == ROLE
    definition = json.loads(described["PipelineDefinition"])
    assert definition == json.loads(expected)  # exactly what export writes
    assert definition["Steps"][0]["Arguments"]["AppSpecification"]["ImageUri"] == image
    key = f"crimecast/code/{bundle.digest()}/pipeline_config.json"
    assert aws.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read() == \
        bundle.to_bytes()

    second = _upsert("--description", "hotspots")
    assert second.exit_code == 0, second.output
    assert "updated pipeline" in _said(second)
    assert aws.client("sagemaker").describe_pipeline(
        PipelineName="crimecast")["PipelineDescription"] == "hotspots"


def test_start_passes_the_parameter_overrides(aws: Any) -> None:
    aws.client("s3").create_bucket(Bucket=BUCKET,
                                   CreateBucketConfiguration={"LocationConstraint": REGION})
    assert _upsert().exit_code == 0
    started = _invoke("sagemaker", "start", "--region", REGION, "--param", "ModelType=xgboost",
                      "--param", "UseSmote=TRUE", "--param", "TrainTestSplitRatio=0.7",
                      "--param", "InputDataUri=s3://data-bucket/lapd/")
    assert started.exit_code == 0, started.output
    client = aws.client("sagemaker")
    (execution,) = client.list_pipeline_executions(
        PipelineName="crimecast")["PipelineExecutionSummaries"]
    arn = execution["PipelineExecutionArn"]
    assert f"started {arn}\n" in started.output
    parameters = client.list_pipeline_parameters_for_execution(
        PipelineExecutionArn=arn)["PipelineParameters"]
    assert parameters == [{"Name": "ModelType", "Value": "xgboost"},
                          {"Name": "UseSmote", "Value": "true"},
                          {"Name": "TrainTestSplitRatio", "Value": "0.7"},
                          {"Name": "InputDataUri", "Value": "s3://data-bucket/lapd/"}]


def test_upsert_reports_a_missing_bucket(aws: Any) -> None:
    settings = load_settings(REPO / "config")
    digest = make_bundle(settings, settings.data.schema_name).digest()
    result = _upsert()
    assert result.exit_code == 2
    assert _said(result) == (
        f"error: uploading s3://{BUCKET}/crimecast/code/{digest}/pipeline_config.json failed: "
        f"NoSuchBucket: The specified bucket does not exist. Create the bucket (aws s3 mb "
        f"s3://{BUCKET} --region {REGION}) or pass --bucket with one the caller can write to.")


def test_start_reports_an_unknown_pipeline(aws: Any) -> None:
    result = _invoke("sagemaker", "start", "--region", REGION, "--name", "nowhere")
    assert result.exit_code == 2
    assert _said(result) == ("error: sagemaker:StartPipelineExecution failed: "
                             "ValidationException: Could not find pipeline with PipelineName "
                             "nowhere. Run crimecast sagemaker upsert first, or pass --name and "
                             "--region of an existing pipeline.")


def test_export_without_flags_uses_marked_placeholders(tmp_path: Path) -> None:
    out = tmp_path / "pipeline.json"
    result = _invoke("sagemaker", "export", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert ("placeholders used for --bucket, --role-arn, --image-uri (account 111122223333); "
            "pass real values before deploying.") in _said(result)
    process = json.loads(out.read_text())["Steps"][0]["Arguments"]
    assert process["RoleArn"] == "arn:aws:iam::111122223333:role/crimecast-sagemaker-execution"


@pytest.mark.parametrize(("args", "message"), [
    (["export", "--region", "mars-1"],
     "--region must be an AWS region where SageMaker runs, such as us-west-2; got 'mars-1'. "
     "Pass --region us-west-2."),
    (["export", "--image-uri", "docker.io/library/crimecast:latest"],
     "--image-uri must be an Amazon ECR image URI (ACCOUNT.dkr.ecr.REGION.amazonaws.com/"
     "REPOSITORY:TAG); got 'docker.io/library/crimecast:latest'. Build the repository's "
     "Dockerfile, push it to ECR and pass its URI."),
    (["export", "--image-uri", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/crimecast:1"],
     "--image-uri must be in the pipeline's region us-west-2; got an image in eu-west-1 "
     "('123456789012.dkr.ecr.eu-west-1.amazonaws.com/crimecast:1'). Push the image to ECR in "
     "us-west-2 or pass --region eu-west-1."),
    (["export", "--bucket", "s3://my-bucket/prefix"],
     "--bucket takes a bucket name, not an S3 URI; got 's3://my-bucket/prefix'. Pass --bucket "
     "my-bucket."),
    (["export", "--bucket", "My_Bucket"],
     "--bucket must be an S3 bucket name (3-63 lowercase letters, digits, dots or hyphens); got "
     "'My_Bucket'. Pass e.g. --bucket my-crimecast-bucket."),
    (["export", "--role-arn", "CrimecastRole"],
     "--role-arn must be an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME); got 'CrimecastRole'. "
     "Pass the ARN of a SageMaker execution role."),
    (["export", "--instance-type", "m5.xlarge"],
     "--instance-type must be a SageMaker instance type such as ml.m5.xlarge; got 'm5.xlarge'. "
     "Pass --instance-type ml.m5.xlarge."),
    (["export", "--name", "crime_cast"],
     "--name must be 1-256 letters, digits or single hyphens, starting with a letter or digit; "
     "got 'crime_cast'. Pass --name crimecast."),
    (["start", "--param", "ModelType"],
     "--param must be NAME=VALUE; got 'ModelType'. Pass e.g. --param ModelType=xgboost."),
    (["start", "--param", "Threshold=0.3"],
     "--param names an unknown pipeline parameter 'Threshold'; the pipeline has ModelType, "
     "TrainTestSplitRatio, UseSmote, F1Threshold, InputDataUri. Pass e.g. --param "
     "ModelType=xgboost."),
    (["start", "--param", "ModelType=resnet"],
     "--param ModelType must be one of balanced_random_forest, catboost, extra_trees, lightgbm, "
     "logistic, random_forest, xgboost; got 'resnet'. Pass e.g. --param ModelType=xgboost."),
    (["start", "--param", "TrainTestSplitRatio=1.5"],
     "--param TrainTestSplitRatio must be > 0 and < 1; got 1.5. Pass e.g. --param "
     "TrainTestSplitRatio=0.8."),
    (["start", "--param", "F1Threshold=high"],
     "--param F1Threshold must be a number; got 'high'. Pass e.g. --param F1Threshold=0.8."),
    (["start", "--param", "UseSmote=maybe"],
     "--param UseSmote must be true or false; got 'maybe'. Pass --param UseSmote=true or "
     "--param UseSmote=false."),
    (["start", "--param", "InputDataUri=/data/lapd.csv"],
     "--param InputDataUri must be an s3:// URI; got '/data/lapd.csv'. Pass e.g. --param "
     "InputDataUri=s3://my-bucket/crimecast/data/."),
    (["start", "--region", "moon-1"],
     "--region must be an AWS region where SageMaker runs, such as us-west-2; got 'moon-1'. "
     "Pass --region us-west-2."),
])
def test_bad_flags_get_one_clear_message(args: list[str], message: str, tmp_path: Path) -> None:
    if args[0] == "export":
        args = [*args, "--out", str(tmp_path / "pipeline.json")]
    result = _invoke("sagemaker", *args)
    assert result.exit_code == 2, result.output
    assert _said(result) == f"error: {message}"


def test_model_card_is_trimmed_to_the_sagemaker_limit() -> None:
    bulky = {"name": "curves", "metric_data": [{"name": "x", "value": "0" * MAX_MODEL_CARD}]}
    kept = {"name": "binary_classification_metrics", "metric_data": [{"name": "f1", "value": 1}]}
    card = {"model_overview": {}, "evaluation_details": [{"metric_groups": [kept, bulky]}]}
    content = json.loads(fit_model_card(card))
    assert content["evaluation_details"][0]["metric_groups"] == [kept]
    assert card["evaluation_details"][0]["metric_groups"] == [kept, bulky]  # not mutated
    small = {"evaluation_details": [{"metric_groups": [kept]}]}
    assert json.loads(fit_model_card(small)) == small
    with pytest.raises(PipelineError):
        fit_model_card({"model_overview": {"model_description": "x" * MAX_MODEL_CARD}})
