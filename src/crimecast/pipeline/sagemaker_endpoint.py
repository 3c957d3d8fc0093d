"""A SageMaker endpoint for registered models: champion/challenger, data capture, autoscaling.

``crimecast sagemaker export-endpoint`` writes an *endpoint definition*
(:class:`EndpointDefinition`, JSON): the ``CreateEndpointConfig`` request and the
Application Auto Scaling ``RegisterScalableTarget``/``PutScalingPolicy`` requests
exactly as boto3 takes them, with the endpoint's name and region. Everything here is
pure: no credentials, no network (botocore's bundled service models check the
requests). :mod:`crimecast.pipeline.sagemaker_deploy` sends a definition to AWS.

Two variants, ``champion`` and ``challenger`` (optional), share the traffic by their
``InitialVariantWeight``; data capture records requests and responses (CSV and JSON)
under ``s3://BUCKET/PREFIX/capture/``; each variant scales between the same minimum
and maximum instance counts by target tracking on
``SageMakerVariantInvocationsPerInstance``, a CloudWatch metric of invocations per
instance per *minute*.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from dataclasses import dataclass, field, fields
from typing import Any

from crimecast.errors import ConfigError
from crimecast.pipeline.sagemaker_target import (
    DEFAULT_PREFIX,
    DEFAULT_REGION,
    DEFAULT_SERVING_INSTANCE_TYPE,
    PLACEHOLDER_ACCOUNT,
    check_bucket,
    check_instance_type,
    check_prefix,
    check_region,
)

FORMAT = "crimecast-sagemaker-endpoint/1"
DEFAULT_ENDPOINT_NAME = "crimecast-hotspots"
DEFAULT_CHAMPION_MODEL = "crimecast-champion"
DEFAULT_CHALLENGER_WEIGHT = 0.1
DEFAULT_MIN_INSTANCES = 1
DEFAULT_MAX_INSTANCES = 4
DEFAULT_INVOCATIONS_PER_INSTANCE = 200.0  # per instance per minute
DEFAULT_SCALE_IN_COOLDOWN = 300
DEFAULT_SCALE_OUT_COOLDOWN = 60
DEFAULT_CAPTURE_PERCENT = 100
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
METRIC = "SageMakerVariantInvocationsPerInstance"
_ENDPOINT = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_MODEL = re.compile(r"^[a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?$")


@dataclass(frozen=True)
class EndpointFlags:
    """The ``export-endpoint``/``deploy`` flags as given; None means "not given"."""

    region: str | None = None
    bucket: str | None = None
    prefix: str | None = None
    endpoint_name: str | None = None
    champion_model: str | None = None
    champion_instance_type: str | None = None
    champion_instances: int | None = None
    challenger_model: str | None = None
    challenger_instance_type: str | None = None
    challenger_instances: int | None = None
    challenger_weight: float | None = None
    min_instances: int | None = None
    max_instances: int | None = None
    invocations_per_instance: float | None = None
    scale_in_cooldown: int | None = None
    scale_out_cooldown: int | None = None
    capture_percent: int | None = None

    def given(self) -> list[str]:
        """The flags that were passed, as the command line spells them."""
        return [f"--{f.name.replace('_', '-')}" for f in fields(self)
                if getattr(self, f.name) is not None]


@dataclass(frozen=True)
class Variant:
    """One production variant: its name, SageMaker Model, instances and traffic weight."""

    name: str
    model: str
    instance_type: str
    instances: int
    weight: float


@dataclass(frozen=True)
class EndpointSpec:
    """A validated endpoint (see :func:`make_endpoint_spec`)."""

    region: str
    endpoint_name: str
    variants: tuple[Variant, ...]
    capture_uri: str
    capture_percent: int
    min_instances: int
    max_instances: int
    invocations_per_instance: float
    scale_in_cooldown: int
    scale_out_cooldown: int
    placeholders: tuple[str, ...] = field(default=())


def _default(value: Any, default: Any) -> Any:
    return default if value is None else value


def _check_name(flag: str, value: str, pattern: re.Pattern[str], example: str) -> str:
    if len(value) > 63 or not pattern.match(value):
        raise ConfigError(f"{flag} must be 1-63 letters, digits or hyphens, starting and ending "
                          f"with a letter or digit; got '{value}'. Pass e.g. {flag} {example}.")
    return value


def _check_count(flag: str, value: int, low: int, high: int | None, fix: str) -> int:
    if value < low or (high is not None and value > high):
        rule = f">= {low}" if high is None else f"between {low} and {high}"
        raise ConfigError(f"{flag} must be {rule}; got {value}. {fix}")
    return value


def make_endpoint_spec(flags: EndpointFlags, account: str | None = None) -> EndpointSpec:
    """Validate every flag and fill the defaults; without ``account`` the bucket is a placeholder.

    Each error names the flag, the rule, the value and the fix.
    """
    region = check_region(_default(flags.region, DEFAULT_REGION))
    placeholders: list[str] = []
    bucket = flags.bucket
    if bucket is None:
        bucket = f"sagemaker-{region}-{account or PLACEHOLDER_ACCOUNT}"
        placeholders += [] if account else ["--bucket"]
    check_bucket(bucket)
    prefix = check_prefix(_default(flags.prefix, DEFAULT_PREFIX))
    endpoint = _check_name("--endpoint-name", _default(flags.endpoint_name,
                                                        DEFAULT_ENDPOINT_NAME),
                           _ENDPOINT, DEFAULT_ENDPOINT_NAME)
    low = _check_count("--min-instances", _default(flags.min_instances, DEFAULT_MIN_INSTANCES),
                       1, None, f"Pass --min-instances {DEFAULT_MIN_INSTANCES}.")
    high = _default(flags.max_instances, DEFAULT_MAX_INSTANCES)
    if high < low:
        raise ConfigError(f"--max-instances must be >= --min-instances ({low}); got {high}. "
                          f"Pass --max-instances {low} or more.")
    target = float(_default(flags.invocations_per_instance, DEFAULT_INVOCATIONS_PER_INSTANCE))
    if not (math.isfinite(target) and target > 0):
        raise ConfigError("--invocations-per-instance must be > 0 (invocations per instance per "
                          f"minute); got {target}. Pass e.g. --invocations-per-instance "
                          f"{DEFAULT_INVOCATIONS_PER_INSTANCE:g}.")
    cooldowns = [_check_count(flag, _default(value, default), 0, None,
                              f"Pass e.g. {flag} {default}.")
                 for flag, value, default in (
                     ("--scale-in-cooldown", flags.scale_in_cooldown, DEFAULT_SCALE_IN_COOLDOWN),
                     ("--scale-out-cooldown", flags.scale_out_cooldown,
                      DEFAULT_SCALE_OUT_COOLDOWN))]
    capture = _check_count("--capture-percent", _default(flags.capture_percent,
                                                         DEFAULT_CAPTURE_PERCENT),
                           0, 100, "Pass --capture-percent 100 (0 turns capture off).")
    return EndpointSpec(
        region=region, endpoint_name=endpoint, variants=_variants(flags, low, high),
        capture_uri=f"s3://{bucket}/{prefix}/capture/", capture_percent=capture,
        min_instances=low, max_instances=high, invocations_per_instance=target,
        scale_in_cooldown=cooldowns[0], scale_out_cooldown=cooldowns[1],
        placeholders=tuple(placeholders))


def _variants(flags: EndpointFlags, low: int, high: int) -> tuple[Variant, ...]:
    challenger_flags = [f for f in flags.given() if f.startswith("--challenger-")]
    if flags.challenger_model is None and challenger_flags:
        raise ConfigError(f"{challenger_flags[0]} needs --challenger-model; got "
                          f"{challenger_flags[0]} without a challenger. Pass --challenger-model "
                          f"NAME or leave {challenger_flags[0]} out.")
    weight = float(_default(flags.challenger_weight, DEFAULT_CHALLENGER_WEIGHT))
    if not 0 <= weight <= 1:
        raise ConfigError("--challenger-weight must be >= 0 and <= 1 (the challenger's share of "
                          f"traffic); got {weight}. Pass e.g. --challenger-weight "
                          f"{DEFAULT_CHALLENGER_WEIGHT}.")
    roles = [("champion", _default(flags.champion_model, DEFAULT_CHAMPION_MODEL),
              flags.champion_instance_type, flags.champion_instances)]
    if flags.challenger_model is not None:
        roles.append(("challenger", flags.challenger_model, flags.challenger_instance_type,
                      flags.challenger_instances))
    weights = [round(1 - weight, 6), weight] if len(roles) == 2 else [1.0]
    variants = []
    for (name, model, instance_type, instances), share in zip(roles, weights, strict=True):
        count = _default(instances, low)
        if not low <= count <= high:
            raise ConfigError(f"--{name}-instances must be between --min-instances ({low}) and "
                              f"--max-instances ({high}); got {count}. Pass --{name}-instances "
                              f"{low} or change --min-instances/--max-instances.")
        variants.append(Variant(
            name=name, model=_check_name(f"--{name}-model", model, _MODEL, f"crimecast-{name}"),
            instance_type=check_instance_type(_default(instance_type,
                                                       DEFAULT_SERVING_INSTANCE_TYPE),
                                              f"--{name}-instance-type"),
            instances=count, weight=share))
    return tuple(variants)


def resource_id(endpoint_name: str, variant: str) -> str:
    """Application Auto Scaling's id of a variant: ``endpoint/NAME/variant/VARIANT``."""
    return f"endpoint/{endpoint_name}/variant/{variant}"


def endpoint_config_request(spec: EndpointSpec) -> dict[str, Any]:
    """The ``create_endpoint_config`` request; its name carries a digest of its content.

    ``--capture-percent 0`` leaves DataCaptureConfig out (no capture).
    """
    request: dict[str, Any] = {"ProductionVariants": [
        {"VariantName": v.name, "ModelName": v.model, "InstanceType": v.instance_type,
         "InitialInstanceCount": v.instances, "InitialVariantWeight": v.weight}
        for v in spec.variants]}
    if spec.capture_percent > 0:
        request["DataCaptureConfig"] = {
            "EnableCapture": True, "InitialSamplingPercentage": spec.capture_percent,
            "DestinationS3Uri": spec.capture_uri,
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"],
                                         "JsonContentTypes": ["application/json"]}}
    return {"EndpointConfigName": config_base(spec.endpoint_name, request), **request}


def config_base(endpoint_name: str, request: dict[str, Any]) -> str:
    """``<endpoint name>-<digest of the variants and capture settings>`` (at most 46 chars)."""
    content = {k: request.get(k) for k in ("ProductionVariants", "DataCaptureConfig")}
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:10]
    return f"{endpoint_name[:35]}-{digest}"


def scalable_target_requests(spec: EndpointSpec) -> list[dict[str, Any]]:
    """One ``register_scalable_target`` request per variant."""
    return [{"ServiceNamespace": "sagemaker", "ResourceId": resource_id(spec.endpoint_name,
                                                                        v.name),
             "ScalableDimension": SCALABLE_DIMENSION, "MinCapacity": spec.min_instances,
             "MaxCapacity": spec.max_instances} for v in spec.variants]


def scaling_policy_requests(spec: EndpointSpec) -> list[dict[str, Any]]:
    """One target-tracking ``put_scaling_policy`` request per variant."""
    return [{"PolicyName": f"{v.name}-invocations-per-instance", "ServiceNamespace": "sagemaker",
             "ResourceId": resource_id(spec.endpoint_name, v.name),
             "ScalableDimension": SCALABLE_DIMENSION, "PolicyType": "TargetTrackingScaling",
             "TargetTrackingScalingPolicyConfiguration": {
                 "TargetValue": spec.invocations_per_instance,
                 "PredefinedMetricSpecification": {"PredefinedMetricType": METRIC},
                 "ScaleInCooldown": spec.scale_in_cooldown,
                 "ScaleOutCooldown": spec.scale_out_cooldown}} for v in spec.variants]


@dataclass(frozen=True)
class EndpointDefinition:
    """What ``export-endpoint`` writes and ``deploy`` sends: boto3 requests, as JSON."""

    region: str
    endpoint_name: str
    endpoint_config: dict[str, Any]
    scalable_targets: tuple[dict[str, Any], ...]
    scaling_policies: tuple[dict[str, Any], ...]
    placeholders: tuple[str, ...] = ()

    @property
    def variants(self) -> list[dict[str, Any]]:
        """The ProductionVariants of the EndpointConfig request."""
        return list(self.endpoint_config["ProductionVariants"])

    def config_base(self) -> str:
        """The EndpointConfig name ``deploy`` extends with a timestamp (from the content)."""
        return config_base(self.endpoint_name, self.endpoint_config)

    def to_json(self) -> str:
        """Indented JSON, for reading and diffing."""
        return json.dumps({
            "Format": FORMAT, "Region": self.region, "EndpointName": self.endpoint_name,
            "Placeholders": list(self.placeholders),
            "CreateEndpointConfig": self.endpoint_config,
            "RegisterScalableTarget": list(self.scalable_targets),
            "PutScalingPolicy": list(self.scaling_policies)}, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str) -> EndpointDefinition:
        """Parse and check a definition: botocore's model of each request, and that the
        autoscaling requests name this endpoint's variants."""
        fix = "Pass a file written by crimecast sagemaker export-endpoint."
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--definition '{source}' must be JSON; got {exc.msg} at line "
                              f"{exc.lineno}. {fix}") from None
        found = data.get("Format") if isinstance(data, dict) else None
        if found != FORMAT:
            raise ConfigError(f"--definition '{source}' must be a crimecast endpoint definition "
                              f"(Format '{FORMAT}'); got Format {found!r}. {fix}")
        keys = ("Region", "EndpointName", "CreateEndpointConfig", "RegisterScalableTarget",
                "PutScalingPolicy")
        missing = [k for k in keys if k not in data]
        if missing:
            raise ConfigError(f"--definition '{source}' must hold {', '.join(keys)}; got none "
                              f"for {', '.join(missing)}. {fix}")
        checks = [("sagemaker", "CreateEndpointConfig", data["CreateEndpointConfig"])]
        checks += [("application-autoscaling", op, r) for op in ("RegisterScalableTarget",
                                                                 "PutScalingPolicy")
                   for r in (data[op] if isinstance(data[op], list) else [data[op]])]
        for service, operation, request in checks:
            problems = check_request(service, operation, request)
            if problems:
                raise ConfigError(f"--definition '{source}' must hold a valid {operation} "
                                  f"request; got {'; '.join(problems)}. {fix}")
        definition = cls(region=str(data["Region"]), endpoint_name=str(data["EndpointName"]),
                         endpoint_config=data["CreateEndpointConfig"],
                         scalable_targets=tuple(data["RegisterScalableTarget"]),
                         scaling_policies=tuple(data["PutScalingPolicy"]),
                         placeholders=tuple(data.get("Placeholders", [])))
        definition.check(source)
        return definition

    def check(self, source: str) -> None:
        """The region and name are valid and autoscaling covers exactly the variants."""
        fix = "Export it again with crimecast sagemaker export-endpoint."
        if not _ENDPOINT.match(self.endpoint_name):
            raise ConfigError(f"--definition '{source}' must name a valid endpoint (1-63 "
                              f"letters, digits or hyphens); got '{self.endpoint_name}'. {fix}")
        try:
            check_region(self.region)
        except ConfigError:
            raise ConfigError(f"--definition '{source}' must name a region where SageMaker "
                              f"runs; got '{self.region}'. {fix}") from None
        expected = sorted(resource_id(self.endpoint_name, v["VariantName"])
                          for v in self.variants)
        for what, requests in (("RegisterScalableTarget", self.scalable_targets),
                               ("PutScalingPolicy", self.scaling_policies)):
            got = sorted(r["ResourceId"] for r in requests)
            if got != expected:
                raise ConfigError(f"--definition '{source}' must have one {what} request per "
                                  f"variant ({', '.join(expected)}); got {', '.join(got)}. "
                                  f"{fix}")


def build_definition(spec: EndpointSpec) -> EndpointDefinition:
    """The endpoint definition for ``spec`` (pure)."""
    return EndpointDefinition(
        region=spec.region, endpoint_name=spec.endpoint_name,
        endpoint_config=endpoint_config_request(spec),
        scalable_targets=tuple(scalable_target_requests(spec)),
        scaling_policies=tuple(scaling_policy_requests(spec)), placeholders=spec.placeholders)


@functools.lru_cache(maxsize=8)
def _service_model(service: str) -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model(service)


def check_request(service: str, operation: str, request: Any) -> list[str]:
    """What botocore's model of ``service`` finds wrong with ``request`` ([] if nothing).

    Offline: the models ship with botocore. It checks required members, unknown
    members, types and minimums (not maximums, patterns or enums; AWS checks those).
    """
    from botocore.validate import ParamValidator

    shape = _service_model(service).operation_model(operation).input_shape
    report = ParamValidator().validate(request, shape)
    if not report.has_errors():
        return []
    return [line.strip() for line in report.generate_report().splitlines() if line.strip()]
