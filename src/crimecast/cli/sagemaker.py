"""``crimecast sagemaker export|upsert|start|entrypoint``: the same pipeline on SageMaker;
``export-endpoint|deploy|schedule``: its endpoint and a schedule.

Registered on the main app by :mod:`crimecast.cli.main`. ``export`` and
``export-endpoint`` work offline with no AWS credentials; ``upsert``, ``start``,
``deploy`` and ``schedule`` call AWS with the caller's.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from crimecast.cli.errors import handle_errors, make_console
from crimecast.cli.options import CommandGroup
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
    no_args_is_help=True, cls=CommandGroup)

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


# export-endpoint and deploy share these; None means "not given" (deploy --definition
# refuses them), so every help text states its default.
EndpointNameOpt = Annotated[str | None, typer.Option(
    "--endpoint-name", help="Endpoint name (default crimecast-hotspots).")]
ChampionModelOpt = Annotated[str | None, typer.Option(
    "--champion-model", help="SageMaker Model of the champion variant, created from the "
    "approved model package (default crimecast-champion).")]
ChallengerModelOpt = Annotated[str | None, typer.Option(
    "--challenger-model", help="SageMaker Model of the challenger variant (default: none, "
    "one variant only).")]
ChallengerWeightOpt = Annotated[float | None, typer.Option(
    "--challenger-weight", help="Challenger's share of traffic, 0-1; the champion gets the "
    "rest (default 0.1).")]
VariantTypeOpt = Annotated[str | None, typer.Option(
    help="Instance type of this variant (default ml.m5.large).")]
VariantCountOpt = Annotated[int | None, typer.Option(
    help="Initial instance count of this variant (default --min-instances).")]
MinOpt = Annotated[int | None, typer.Option(
    "--min-instances", help="Autoscaling minimum instances per variant (default 1).")]
MaxOpt = Annotated[int | None, typer.Option(
    "--max-instances", help="Autoscaling maximum instances per variant (default 4).")]
InvocationsOpt = Annotated[float | None, typer.Option(
    "--invocations-per-instance", help="Target of SageMakerVariantInvocationsPerInstance, "
    "invocations per instance per MINUTE (requests/s x 60; default 200).")]
ScaleInOpt = Annotated[int | None, typer.Option(
    "--scale-in-cooldown", help="Seconds between scale-in activities (default 300).")]
ScaleOutOpt = Annotated[int | None, typer.Option(
    "--scale-out-cooldown", help="Seconds between scale-out activities (default 60).")]
CaptureOpt = Annotated[int | None, typer.Option(
    "--capture-percent", help="Share of requests whose input and output data capture "
    "records, 0-100; 0 turns capture off (default 100).")]
EndpointBucketOpt = Annotated[str | None, typer.Option(
    "--bucket", help="Bucket for captured data, s3://BUCKET/PREFIX/capture/ (default "
    "sagemaker-REGION-ACCOUNT; a placeholder account offline).")]
EndpointPrefixOpt = Annotated[str | None, typer.Option(
    "--prefix", help="S3 key prefix of the capture folder (default crimecast).")]
EndpointRegionOpt = Annotated[str | None, typer.Option(
    "--region", help="AWS region (default us-west-2).")]


def _endpoint_flags(arguments: dict[str, Any]) -> Any:
    """The EndpointFlags among a command's arguments."""
    from dataclasses import fields

    from crimecast.pipeline.sagemaker_endpoint import EndpointFlags

    return EndpointFlags(**{f.name: arguments[f.name] for f in fields(EndpointFlags)})


@sagemaker_app.command("export-endpoint")
@handle_errors
def export_endpoint(
    out: Annotated[Path, typer.Option("--out", help="Where to write the endpoint definition "
                                                    "JSON (required).")],
    endpoint_name: EndpointNameOpt = None, champion_model: ChampionModelOpt = None,
    champion_instance_type: VariantTypeOpt = None, champion_instances: VariantCountOpt = None,
    challenger_model: ChallengerModelOpt = None, challenger_weight: ChallengerWeightOpt = None,
    challenger_instance_type: VariantTypeOpt = None,
    challenger_instances: VariantCountOpt = None, min_instances: MinOpt = None,
    max_instances: MaxOpt = None, invocations_per_instance: InvocationsOpt = None,
    scale_in_cooldown: ScaleInOpt = None, scale_out_cooldown: ScaleOutOpt = None,
    capture_percent: CaptureOpt = None, bucket: EndpointBucketOpt = None,
    prefix: EndpointPrefixOpt = None, region: EndpointRegionOpt = None,
) -> None:
    """Write the endpoint definition JSON: EndpointConfig with champion/challenger variants
    and data capture, and the autoscaling requests. Offline; no AWS credentials needed."""
    flags = _endpoint_flags(locals())
    from crimecast.pipeline.sagemaker_endpoint import build_definition, make_endpoint_spec

    definition = build_definition(make_endpoint_spec(flags))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(definition.to_json())
    shares = ", ".join(f"{v['VariantName']} {v['ModelName']} {v['InitialVariantWeight']:.0%}"
                       for v in definition.variants)
    console.print(f"wrote {out}: endpoint '{definition.endpoint_name}' in "
                  f"{definition.region} ({shares})")
    if definition.placeholders:
        console.print(f"[yellow]placeholders used for {', '.join(definition.placeholders)} "
                      "(account 111122223333); pass real values before deploying.[/]")


@sagemaker_app.command()
@handle_errors
def deploy(
    definition_path: Annotated[Path | None, typer.Option(
        "--definition", help="Endpoint definition from export-endpoint (default: build it "
        "from the flags below).")] = None,
    wait: Annotated[bool, typer.Option(
        "--wait/--no-wait", help="Wait until the endpoint is InService, then apply "
        "autoscaling (with --no-wait, run deploy again later to apply it).")]
    = True,
    endpoint_name: EndpointNameOpt = None, champion_model: ChampionModelOpt = None,
    champion_instance_type: VariantTypeOpt = None, champion_instances: VariantCountOpt = None,
    challenger_model: ChallengerModelOpt = None, challenger_weight: ChallengerWeightOpt = None,
    challenger_instance_type: VariantTypeOpt = None,
    challenger_instances: VariantCountOpt = None, min_instances: MinOpt = None,
    max_instances: MaxOpt = None, invocations_per_instance: InvocationsOpt = None,
    scale_in_cooldown: ScaleInOpt = None, scale_out_cooldown: ScaleOutOpt = None,
    capture_percent: CaptureOpt = None, bucket: EndpointBucketOpt = None,
    prefix: EndpointPrefixOpt = None, region: EndpointRegionOpt = None,
) -> None:
    """Create or update the endpoint and its autoscaling (needs AWS credentials).

    The variants' SageMaker Models must exist. Each deploy creates a new EndpointConfig;
    an existing endpoint is updated to it, unless it already runs the same definition.
    """
    flags = _endpoint_flags(locals())
    from crimecast.errors import ConfigError
    from crimecast.pipeline.sagemaker_aws import account_id, aws_session
    from crimecast.pipeline.sagemaker_deploy import deploy_endpoint
    from crimecast.pipeline.sagemaker_endpoint import (
        EndpointDefinition,
        build_definition,
        make_endpoint_spec,
    )

    if definition_path is not None:
        if flags.given():
            raise ConfigError(f"--definition and {flags.given()[0]} exclude each other; got "
                              "both. Pass the flags to export-endpoint, or deploy without "
                              "--definition.")
        try:
            text = definition_path.read_text()
        except OSError as exc:
            raise ConfigError(f"--definition must be a readable file; got '{definition_path}' "
                              f"({exc.strerror}). Write it with crimecast sagemaker "
                              "export-endpoint --out FILE.") from None
        definition = EndpointDefinition.from_json(text, str(definition_path))
        session = aws_session(definition.region)
    else:
        spec = make_endpoint_spec(flags)  # every flag checked before any AWS call
        session = aws_session(spec.region)
        if bucket is None:
            spec = make_endpoint_spec(flags, account=account_id(session))
        definition = build_definition(spec)
    done = deploy_endpoint(session, definition, wait=wait)
    console.print(f"{done.action} endpoint {done.endpoint_arn} ({done.status}) with endpoint "
                  f"config {done.endpoint_config_name}")
    for variant in definition.variants:
        console.print(f"  {variant['VariantName']}: {variant['ModelName']} on "
                      f"{variant['InitialInstanceCount']} x {variant['InstanceType']}, "
                      f"{variant['InitialVariantWeight']:.0%} of traffic")
    for resource in done.deregistered:
        console.print(f"deregistered {resource} from autoscaling before the update")
    if done.scaled:
        target = definition.scalable_targets[0]
        policy = definition.scaling_policies[0]["TargetTrackingScalingPolicyConfiguration"]
        console.print(f"autoscaling {', '.join(done.scaled)}: {target['MinCapacity']}-"
                      f"{target['MaxCapacity']} instances, target {policy['TargetValue']:g} "
                      "invocations per instance per minute")
    else:
        console.print(f"[yellow]autoscaling not applied yet: the endpoint is {done.status}; "
                      "run the same deploy again once it is InService (it then only applies "
                      "the autoscaling).[/]")


@sagemaker_app.command()
@handle_errors
def schedule(
    cron: Annotated[str, typer.Option(
        "--cron", help='EventBridge schedule, in UTC: cron(MIN HOUR DAY-OF-MONTH MONTH '
        'DAY-OF-WEEK YEAR), e.g. "cron(0 6 ? * MON *)", or rate(VALUE UNIT) (required).')],
    role_arn: Annotated[str, typer.Option(
        "--role-arn", help="Role EventBridge assumes to start the pipeline "
        "(sagemaker:StartPipelineExecution; required).")],
    pipeline_name: Annotated[str, typer.Option(
        "--pipeline-name", help="SageMaker pipeline to start.")]
    = DEFAULT_PIPELINE_NAME,
    param: Annotated[list[str] | None, typer.Option(
        "--param", help="Override a pipeline parameter: NAME=VALUE (repeatable; default "
        "none).")] = None,
    rule_name: Annotated[str | None, typer.Option(
        "--rule-name", help="EventBridge rule name (default PIPELINE-NAME-schedule).")] = None,
    region: RegionOpt = DEFAULT_REGION,
) -> None:
    """Create or update an EventBridge rule that starts the pipeline on a schedule (needs
    AWS credentials)."""
    from crimecast.pipeline.sagemaker_aws import aws_session, parse_params
    from crimecast.pipeline.sagemaker_schedule import check_schedule_flags, upsert_schedule
    from crimecast.pipeline.sagemaker_target import check_region

    expression, name, role, rule = check_schedule_flags(cron, pipeline_name, role_arn,
                                                        rule_name)
    parameters = parse_params(param or [])
    session = aws_session(check_region(region))
    done = upsert_schedule(session, expression, name, role, rule, parameters)
    console.print(f"{'created' if done.created else 'updated'} rule {done.rule_arn}: "
                  f"{expression} starts {done.pipeline_arn}")
    for key, value in parameters.items():
        console.print(f"  {key} = {value}")
