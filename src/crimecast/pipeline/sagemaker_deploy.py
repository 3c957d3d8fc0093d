"""The AWS edge of the endpoint: ``crimecast sagemaker deploy`` (boto3, caller's credentials).

:func:`deploy_endpoint` sends an :class:`~crimecast.pipeline.sagemaker_endpoint.EndpointDefinition`:

1. every variant's SageMaker Model must already exist (created from a registered model
   package); DescribeModel checks them, deploy never creates them;
2. CreateEndpointConfig with a new name, ``<endpoint>-<digest>-<UTC time>``: the digest
   covers the variants and capture settings, so redeploying what the endpoint already
   runs is recognised and leaves it as it is (``unchanged``);
3. CreateEndpoint, or UpdateEndpoint when the endpoint exists, after deleting the
   scaling policies and scalable targets of the variants the update removes or moves to
   another instance type (AWS refuses such an update of an autoscaled variant);
4. with ``wait``, the endpoint_in_service waiter; once the endpoint is InService,
   RegisterScalableTarget and PutScalingPolicy for every variant (Application Auto
   Scaling scales the variants of an endpoint in service). Without ``wait`` a new or
   updated endpoint is still Creating/Updating: deploying the same definition again
   later finds it unchanged and applies the autoscaling.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from crimecast.errors import ConfigError, PipelineError
from crimecast.pipeline.sagemaker_aws import _aws_call
from crimecast.pipeline.sagemaker_endpoint import (
    SCALABLE_DIMENSION,
    EndpointDefinition,
    resource_id,
)

logger = logging.getLogger(__name__)

BUSY = ("Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting")
WAIT_DELAY_S, WAIT_ATTEMPTS = 30, 120  # up to an hour, as boto3's own waiter


@dataclass(frozen=True)
class Deployed:
    """What ``deploy`` did: ``action`` is created, updated or unchanged."""

    endpoint_arn: str
    action: str
    endpoint_config_name: str
    status: str
    deregistered: tuple[str, ...]
    scaled: tuple[str, ...]


def deploy_endpoint(session: Any, definition: EndpointDefinition, wait: bool = True,
                    now: datetime | None = None) -> Deployed:
    """Create or update the endpoint, then autoscale its variants once it is InService."""
    if definition.placeholders:
        raise ConfigError(f"deploy needs real values for {', '.join(definition.placeholders)}; "
                          "the definition holds placeholders for offline export. Export it "
                          "again with them, or deploy with flags (--bucket then defaults to "
                          "sagemaker-REGION-ACCOUNT).")
    client = session.client("sagemaker")
    scaling = session.client("application-autoscaling")
    _check_models(client, definition)
    name = definition.endpoint_name
    current = _describe_endpoint(client, name)
    _check_deployable(name, current)
    base = definition.config_base()
    deregistered: tuple[str, ...] = ()
    if current is not None and current["EndpointConfigName"].startswith(base):
        action, config_name = "unchanged", str(current["EndpointConfigName"])
    else:
        config_name = f"{base}-{(now or datetime.now(UTC)):%Y%m%d-%H%M%S}"
        fix = "Check the variants' models and instance types and the caller's sagemaker rights."
        _aws_call("sagemaker:CreateEndpointConfig", fix, client.create_endpoint_config,
                  **{**definition.endpoint_config, "EndpointConfigName": config_name})
        logger.info("created endpoint config %s", config_name)
        if current is None:
            action = "created"
            _aws_call("sagemaker:CreateEndpoint", fix, client.create_endpoint,
                      EndpointName=name, EndpointConfigName=config_name)
        else:
            action = "updated"
            deregistered = release_blocking_targets(client, scaling, definition, current)
            _aws_call("sagemaker:UpdateEndpoint", fix, client.update_endpoint,
                      EndpointName=name, EndpointConfigName=config_name)
    if wait:
        _wait_in_service(client, name)
    described = _describe_endpoint(client, name) or {}
    status = str(described.get("EndpointStatus", "unknown"))
    scaled = apply_autoscaling(scaling, definition) if status == "InService" else ()
    return Deployed(endpoint_arn=str(described.get("EndpointArn", "")), action=action,
                    endpoint_config_name=config_name, status=status,
                    deregistered=deregistered, scaled=scaled)


def _check_models(client: Any, definition: EndpointDefinition) -> None:
    for variant in definition.variants:
        found = _aws_call("sagemaker:DescribeModel", "Check the caller's sagemaker rights.",
                          client.describe_model, absent=("ValidationException",),
                          ModelName=variant["ModelName"])
        if found is None:
            flag = f"--{variant['VariantName']}-model"
            raise PipelineError(
                f"{flag} must name an existing SageMaker model in {definition.region}; got "
                f"'{variant['ModelName']}', which does not exist. Create it from the approved "
                f"model package (aws sagemaker create-model --model-name {variant['ModelName']} "
                "--primary-container ModelPackageName=ARN --execution-role-arn ROLE) or pass "
                f"{flag} with an existing model.")


def _describe_endpoint(client: Any, name: str) -> dict[str, Any] | None:
    described = _aws_call("sagemaker:DescribeEndpoint", "Check the caller's sagemaker rights.",
                          client.describe_endpoint, absent=("ValidationException",),
                          EndpointName=name)
    return None if described is None else dict(described)


def _check_deployable(name: str, described: dict[str, Any] | None) -> None:
    status = None if described is None else described["EndpointStatus"]
    if status in BUSY:
        raise PipelineError(f"endpoint {name} must be in service to deploy; got status {status}."
                            f" Wait (aws sagemaker wait endpoint-in-service --endpoint-name "
                            f"{name}) and deploy again.")
    if status == "Failed":
        assert described is not None
        raise PipelineError(f"endpoint {name} must be in service to deploy; got status Failed "
                            f"({described.get('FailureReason', 'no reason given')}). Delete it "
                            f"(aws sagemaker delete-endpoint --endpoint-name {name}) and deploy "
                            "again.")


def release_blocking_targets(client: Any, scaling: Any, definition: EndpointDefinition,
                             current: dict[str, Any]) -> tuple[str, ...]:
    """Delete the policies and scalable targets of the variants an update would remove or
    move to another instance type (AWS refuses such an update otherwise)."""
    config = _aws_call("sagemaker:DescribeEndpointConfig", "Check the caller's sagemaker "
                       "rights.", client.describe_endpoint_config,
                       EndpointConfigName=current["EndpointConfigName"])
    new = {v["VariantName"]: v.get("InstanceType") for v in definition.variants}
    changed = [resource_id(definition.endpoint_name, v["VariantName"])
               for v in config["ProductionVariants"]
               if new.get(v["VariantName"], "removed") != v.get("InstanceType")]
    if not changed:
        return ()
    fix = "The caller needs application-autoscaling:DeregisterScalableTarget."
    keys: dict[str, Any] = {"ServiceNamespace": "sagemaker",
                            "ScalableDimension": SCALABLE_DIMENSION}
    registered = _aws_call("application-autoscaling:DescribeScalableTargets", fix,
                           scaling.describe_scalable_targets, ResourceIds=changed,
                           **keys)["ScalableTargets"]
    released = []
    for target in registered:
        policies = _aws_call("application-autoscaling:DescribeScalingPolicies", fix,
                             scaling.describe_scaling_policies,
                             ResourceId=target["ResourceId"], **keys)["ScalingPolicies"]
        for policy in policies:
            _aws_call("application-autoscaling:DeleteScalingPolicy", fix,
                      scaling.delete_scaling_policy, PolicyName=policy["PolicyName"],
                      ResourceId=target["ResourceId"], **keys)
        _aws_call("application-autoscaling:DeregisterScalableTarget", fix,
                  scaling.deregister_scalable_target, ResourceId=target["ResourceId"], **keys)
        released.append(str(target["ResourceId"]))
    return tuple(released)


def _wait_in_service(client: Any, name: str) -> None:
    from botocore.exceptions import WaiterError

    try:
        client.get_waiter("endpoint_in_service").wait(
            EndpointName=name, WaiterConfig={"Delay": WAIT_DELAY_S,
                                             "MaxAttempts": WAIT_ATTEMPTS})
    except WaiterError as exc:
        reason = (exc.last_response or {}).get("FailureReason") or str(exc)
        raise PipelineError(f"endpoint {name} must reach InService; it did not: {reason}. See "
                            f"its CloudWatch logs (/aws/sagemaker/Endpoints/{name}).") from None


def apply_autoscaling(scaling: Any, definition: EndpointDefinition) -> tuple[str, ...]:
    """Register every variant as a scalable target and put its target-tracking policy."""
    fix = ("The caller needs application-autoscaling:RegisterScalableTarget and "
           "PutScalingPolicy (and iam:CreateServiceLinkedRole the first time).")
    for request in definition.scalable_targets:
        _aws_call("application-autoscaling:RegisterScalableTarget", fix,
                  scaling.register_scalable_target, **request)
    for request in definition.scaling_policies:
        _aws_call("application-autoscaling:PutScalingPolicy", fix,
                  scaling.put_scaling_policy, **request)
    return tuple(str(r["ResourceId"]) for r in definition.scalable_targets)
