"""``crimecast sagemaker export|upsert|start|entrypoint``: the same pipeline on SageMaker.

Registered on the main app by :mod:`crimecast.cli.main`. ``export`` works offline with
no AWS credentials; ``upsert`` and ``start`` call AWS with the caller's.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from crimecast.cli.errors import handle_errors, make_console
from crimecast.pipeline.sagemaker_target import (
    DEFAULT_INSTANCE_TYPE,
    DEFAULT_PIPELINE_NAME,
    DEFAULT_PREFIX,
    DEFAULT_REGION,
    DEFAULT_SERVING_INSTANCE_TYPE,
)

# soft_wrap: ARNs and S3 URIs must stay copyable, never broken across lines.
console = make_console(soft_wrap=True)
sagemaker_app = typer.Typer(
    help="Export, deploy and run the pipeline on SageMaker Pipelines; container entry points.",
    no_args_is_help=True)

OutOpt = Annotated[Path, typer.Option("--out", help="Where to write the definition JSON.")]
RoleOpt = Annotated[str | None, typer.Option("--role-arn", help="SageMaker execution role ARN.")]
BucketOpt = Annotated[str | None, typer.Option("--bucket", help="S3 bucket for code and "
                                                                "artefacts.")]
RegionOpt = Annotated[str, typer.Option("--region", help="AWS region.")]
InstanceOpt = Annotated[str, typer.Option("--instance-type", help="Processing and training "
                                                                  "instance type.")]
ImageOpt = Annotated[str | None, typer.Option("--image-uri", help="ECR URI of the image built "
                                                                  "from the Dockerfile.")]
NameOpt = Annotated[str, typer.Option("--name", help="Pipeline name.")]
PrefixOpt = Annotated[str, typer.Option("--prefix", help="S3 key prefix for the bundle.")]
ServingOpt = Annotated[str, typer.Option("--serving-instance-type",
                                         help="Endpoint instance type.")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="Folder with config.yaml, "
                                                "feature_config.yaml, models.yaml.")]
SchemaOpt = Annotated[str | None, typer.Option("--schema", help="auto, lapd, generic or "
                                                                "MAP.yaml.")]
TuneOpt = Annotated[int, typer.Option("--tune", help="Optuna trials in the Train job.")]


class _QuietSDK(logging.Filter):
    """Drop the SDK's chatter (it logs every popped field and its config lookups)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith("sagemaker") or record.levelno >= logging.ERROR


def _quiet_sdk_logs() -> None:
    if logging.getLogger().getEffectiveLevel() > logging.INFO:  # not --verbose
        for handler in logging.getLogger().handlers:
            handler.addFilter(_QuietSDK())


def _bundle(config: Path | None, schema: str | None, tune: int) -> Any:
    from crimecast.config import load_settings
    from crimecast.pipeline.container_io import make_bundle

    settings = load_settings(config)
    return make_bundle(settings, schema or settings.data.schema_name, tune)


@sagemaker_app.command()
@handle_errors
def export(
    out: OutOpt, role_arn: RoleOpt = None, bucket: BucketOpt = None,
    region: RegionOpt = DEFAULT_REGION, instance_type: InstanceOpt = DEFAULT_INSTANCE_TYPE,
    image_uri: ImageOpt = None, name: NameOpt = DEFAULT_PIPELINE_NAME,
    config: ConfigOpt = None, schema: SchemaOpt = None, tune: TuneOpt = 0,
    prefix: PrefixOpt = DEFAULT_PREFIX,
    serving_instance_type: ServingOpt = DEFAULT_SERVING_INSTANCE_TYPE,
    bundle_out: Annotated[Path | None, typer.Option(
        "--bundle-out", help="Also write the pipeline bundle (pipeline_config.json).")] = None,
) -> None:
    """Write the SageMaker Pipelines definition JSON. Offline; no AWS credentials needed."""
    from crimecast.pipeline.sagemaker import bundle_s3_uri, definition_json
    from crimecast.pipeline.sagemaker_target import make_target

    _quiet_sdk_logs()
    target = make_target(region=region, bucket=bucket, role_arn=role_arn, image_uri=image_uri,
                         instance_type=instance_type, pipeline_name=name, prefix=prefix,
                         serving_instance_type=serving_instance_type)
    bundle = _bundle(config, schema, tune)
    with console.status("building the SageMaker pipeline definition..."):
        definition = definition_json(target, bundle)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(definition)
    console.print(f"wrote {out}: pipeline '{target.pipeline_name}' in {target.region}")
    console.print(f"the jobs read the pipeline bundle at {bundle_s3_uri(target, bundle)} "
                  "(crimecast sagemaker upsert uploads it)")
    if bundle_out is not None:
        bundle_out.parent.mkdir(parents=True, exist_ok=True)
        bundle_out.write_bytes(bundle.to_bytes())
        console.print(f"wrote {bundle_out}")
    if target.placeholders:
        console.print(f"[yellow]placeholders used for {', '.join(target.placeholders)} "
                      "(account 111122223333); pass real values before deploying.[/]")


@sagemaker_app.command()
@handle_errors
def upsert(
    role_arn: Annotated[str, typer.Option("--role-arn", help="SageMaker execution role ARN.")],
    bucket: BucketOpt = None, region: RegionOpt = DEFAULT_REGION,
    instance_type: InstanceOpt = DEFAULT_INSTANCE_TYPE, image_uri: ImageOpt = None,
    name: NameOpt = DEFAULT_PIPELINE_NAME, config: ConfigOpt = None, schema: SchemaOpt = None,
    tune: TuneOpt = 0, prefix: PrefixOpt = DEFAULT_PREFIX,
    serving_instance_type: ServingOpt = DEFAULT_SERVING_INSTANCE_TYPE,
    description: Annotated[str | None, typer.Option(help="Pipeline description.")] = None,
) -> None:
    """Upload the pipeline bundle and create or update the pipeline (needs AWS credentials).

    --bucket defaults to sagemaker-REGION-ACCOUNT and --image-uri to
    ACCOUNT.dkr.ecr.REGION.amazonaws.com/crimecast:VERSION.
    """
    from crimecast.pipeline.sagemaker import definition_json
    from crimecast.pipeline.sagemaker_aws import account_id, aws_session, upsert_pipeline
    from crimecast.pipeline.sagemaker_target import check_region, make_target

    _quiet_sdk_logs()
    session = aws_session(check_region(region))
    account = account_id(session) if bucket is None or image_uri is None else None
    target = make_target(region=region, bucket=bucket, role_arn=role_arn, image_uri=image_uri,
                         instance_type=instance_type, pipeline_name=name, account=account,
                         prefix=prefix, serving_instance_type=serving_instance_type)
    bundle = _bundle(config, schema, tune)
    definition = definition_json(target, bundle)
    done = upsert_pipeline(session, target, bundle, definition, description)
    console.print(f"{'created' if done.created else 'updated'} pipeline {done.pipeline_arn}")
    console.print(f"uploaded the pipeline bundle to {done.bundle_uri}")


@sagemaker_app.command()
@handle_errors
def start(
    name: NameOpt = DEFAULT_PIPELINE_NAME, region: RegionOpt = DEFAULT_REGION,
    param: Annotated[list[str] | None, typer.Option(
        "--param", help="Override a pipeline parameter: NAME=VALUE (repeatable).")] = None,
    display_name: Annotated[str | None, typer.Option(help="Execution display name.")] = None,
) -> None:
    """Start an execution of the pipeline with parameter overrides (needs AWS credentials)."""
    from crimecast.pipeline.sagemaker_aws import aws_session, parse_params, start_execution
    from crimecast.pipeline.sagemaker_target import check_pipeline_name, check_region

    parameters = parse_params(param or [])
    session = aws_session(check_region(region))
    arn = start_execution(session, check_pipeline_name(name), parameters, display_name)
    console.print(f"started {arn}")
    for key, value in parameters.items():
        console.print(f"  {key} = {value}")


@sagemaker_app.command(context_settings={"allow_extra_args": True,
                                         "ignore_unknown_options": True})
@handle_errors
def entrypoint(
    ctx: typer.Context,
    step: Annotated[str, typer.Argument(help="process, train, evaluate, card or register.")],
) -> None:
    """Run one pipeline step inside the SageMaker container (what the jobs execute).

    Options after STEP: --root, --model-type, --train-test-split-ratio, --use-smote,
    --f1-threshold, --run-id, --model-card-name, --region, --tracking-uri.
    """
    from crimecast.pipeline.container import run_entrypoint

    # Job logs go to CloudWatch; show progress there, not only errors.
    logging.getLogger("crimecast").setLevel(logging.INFO)
    run_entrypoint([step, *ctx.args])
