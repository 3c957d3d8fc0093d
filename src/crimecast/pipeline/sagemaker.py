"""The local pipeline as a SageMaker Pipelines definition, built with the official SDK (v3).

Steps and what each runs in the crimecast image (see :mod:`crimecast.pipeline.container`)::

    Process (ProcessingStep)   -> steps.process
    Train (TrainingStep)       -> steps.train, into SM_MODEL_DIR (model.tar.gz)
    Evaluate (ProcessingStep)  -> steps.evaluate + steps.gate; PropertyFiles EvaluationReport
                                  (evaluation.json) and GateDecision (gate.json)
    CheckGate (ConditionStep)  follows the configured gate metric: the learned model's
                               validation value (JsonGet gate.json model_value) > the best
                               naive forecaster's (baseline_value), or with gate_metric f1,
                               F1 (JsonGet binary_classification_metrics.f1.value)
                               >= F1Threshold; and gate.json "passed" is true
      if true:  CreateModelCard (ProcessingStep -> steps.card, then CreateModelCard API)
                RegisterModel (ModelStep, ModelMetrics -> evaluation.json)
      if false: GateFailed (FailStep; the message carries F1Threshold)

The "passed" condition makes SageMaker register exactly when the local gate would
(:func:`crimecast.evaluation.gate.decide_gate`: the learned model beats the best
naive forecaster on validation by the gate metric, and with ``f1`` also reaches
the threshold). ``--register-best`` (deploying a naive or SEPP champion) is a
local option; the exported pipeline registers only a learned model that passes.

Building the definition makes no AWS call and reaches no network: the session
has an explicit region and bucket and no credentials (so the SDK's telemetry,
which needs the account id, and boto3's metadata probes never run), the role is
not validated client-side, and the only "code" the jobs need besides the image, the pipeline bundle
(``pipeline_config.json``), is referenced by a content-addressed S3 URI that
``crimecast sagemaker upsert`` uploads.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings
from collections.abc import Iterator
from typing import Any

from crimecast.errors import DependencyError
from crimecast.evaluation.selection import primary_metric
from crimecast.pipeline.container_io import BUNDLE_FILE, PipelineBundle
from crimecast.pipeline.sagemaker_target import MODEL_PACKAGE_GROUP, SageMakerTarget

logger = logging.getLogger(__name__)

F1_JSON_PATH = "binary_classification_metrics.f1.value"
GATE_JSON_PATH = "passed"
MODEL_VALUE_PATH = "model_value"
BASELINE_VALUE_PATH = "baseline_value"
PARAMETERS = ("ModelType", "TrainTestSplitRatio", "UseSmote", "F1Threshold", "InputDataUri")
ENTRYPOINT = ["crimecast", "sagemaker", "entrypoint"]
CACHE_EXPIRY = "P30D"
MAX_RUNTIME_S = 4 * 3600


def bundle_s3_uri(target: SageMakerTarget, bundle: PipelineBundle) -> str:
    """Content-addressed S3 URI of the pipeline bundle (``upsert`` uploads it there)."""
    return target.s3("code", bundle.digest(), BUNDLE_FILE)


@contextlib.contextmanager
def sdk_environment(region: str) -> Iterator[None]:
    """Import-time and build-time settings the SDK needs to stay offline.

    Importing ``sagemaker.mlops`` creates a boto3 client at class-definition time,
    which needs a default region, and the SDK makes more clients from the default
    credential chain while validating steps; ``AWS_EC2_METADATA_DISABLED`` keeps
    those from probing the EC2 metadata endpoint. ``SAGEMAKER_VALIDATE_ROLE=false``
    stops the SDK from calling IAM. Everything is restored afterwards.
    """
    keys = ("AWS_DEFAULT_REGION", "SAGEMAKER_VALIDATE_ROLE", "AWS_EC2_METADATA_DISABLED")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.setdefault("AWS_DEFAULT_REGION", region)
    os.environ["SAGEMAKER_VALIDATE_ROLE"] = "false"
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    root_level = logging.getLogger().level
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Running within a PipelineSession")
            yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        # The SDK calls logging.basicConfig(level=INFO) on import; keep the caller's level.
        logging.getLogger().setLevel(root_level)


def offline_boto_session(region: str) -> Any:
    """A boto3 session with a region and *no* credential providers.

    Building a definition needs no AWS call; with no credentials any accidental
    call fails at once (NoCredentialsError) instead of reaching the network, and
    boto3 never probes the EC2 metadata endpoint or reads the caller's keys.
    """
    import boto3
    import botocore.session
    from botocore.credentials import CredentialResolver

    core = botocore.session.Session()
    core.register_component("credential_provider", CredentialResolver(providers=[]))
    return boto3.Session(region_name=region, botocore_session=core)


def pipeline_session(region: str, bucket: str) -> Any:
    """An offline ``PipelineSession`` with an explicit region and bucket.

    As with any SDK session, SageMaker's defaults files (``/etc/xdg/sagemaker/config.yaml``,
    ``~/.config/sagemaker/config.yaml``), when present, still apply their VPC, KMS or tag
    defaults to the jobs.
    """
    try:
        from sagemaker.core.workflow.pipeline_context import PipelineSession
    except ImportError as exc:
        raise DependencyError(
            f"the SageMaker SDK is not installed ({exc.name} is missing). Run pip install "
            "'crimecast[aws]' (or '.[dev]' in a checkout).") from None
    return PipelineSession(boto_session=offline_boto_session(region), default_bucket=bucket)


def build_pipeline(target: SageMakerTarget, bundle: PipelineBundle) -> Any:
    """The ``sagemaker.mlops.workflow.Pipeline`` for ``target`` (see the module docstring)."""
    with sdk_environment(target.region):
        return _build(target, bundle, pipeline_session(target.region, target.bucket))


def definition_json(target: SageMakerTarget, bundle: PipelineBundle) -> str:
    """The pipeline's ``definition()``, indented for reading and diffing."""
    pipeline = build_pipeline(target, bundle)
    with sdk_environment(target.region):
        definition = pipeline.definition()
    return json.dumps(json.loads(definition), indent=2) + "\n"


def _build(target: SageMakerTarget, bundle: PipelineBundle, session: Any) -> Any:
    from sagemaker.core.workflow.conditions import (
        ConditionEquals,
        ConditionGreaterThan,
        ConditionGreaterThanOrEqualTo,
    )
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join, JsonGet
    from sagemaker.core.workflow.parameters import (
        ParameterBoolean,
        ParameterFloat,
        ParameterString,
    )
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow import (
        CacheConfig,
        ConditionStep,
        FailStep,
        Pipeline,
        ProcessingStep,
        TrainingStep,
    )

    pipe = bundle.settings.pipeline
    model_type = ParameterString(name="ModelType", default_value=pipe.model_type)
    split_ratio = ParameterFloat(name="TrainTestSplitRatio",
                                 default_value=pipe.train_test_split_ratio)
    use_smote = ParameterBoolean(name="UseSmote", default_value=pipe.use_smote)
    f1_threshold = ParameterFloat(name="F1Threshold", default_value=pipe.f1_threshold)
    input_data = ParameterString(name="InputDataUri", default_value=target.s3("data") + "/")
    execution = ExecutionVariables.PIPELINE_EXECUTION_ID
    cache = CacheConfig(enable_caching=True, expire_after=CACHE_EXPIRY)
    jobs = _JobFactory(target, session, bundle_s3_uri(target, bundle))

    def outputs_of(step_name: str) -> Any:
        return Join(on="/", values=[target.s3("executions"), execution, step_name])

    process = ProcessingStep(
        name="Process", cache_config=cache, retry_policies=jobs.retry_policies(),
        step_args=jobs.processing("process", {"data": input_data},
                                  {"process": ("output/process", outputs_of("process"))},
                                  ["--train-test-split-ratio", split_ratio.to_string()]))
    process_uri = process.properties.ProcessingOutputConfig.Outputs["process"].S3Output.S3Uri
    train = TrainingStep(
        name="Train", cache_config=cache, retry_policies=jobs.retry_policies(),
        step_args=jobs.training(process_uri, {
            "model_type": model_type, "use_smote": use_smote.to_string(),
            "train_test_split_ratio": split_ratio.to_string()}))
    model_uri = train.properties.ModelArtifacts.S3ModelArtifacts
    report = PropertyFile(name="EvaluationReport", output_name="evaluation",
                          path="evaluation.json")
    decision = PropertyFile(name="GateDecision", output_name="evaluation", path="gate.json")
    evaluate = ProcessingStep(
        name="Evaluate", cache_config=cache, retry_policies=jobs.retry_policies(),
        property_files=[report, decision],
        step_args=jobs.processing("evaluate", {"process": process_uri, "model": model_uri},
                                  {"evaluation": ("evaluation", outputs_of("evaluate"))},
                                  ["--f1-threshold", f1_threshold.to_string()]))
    evaluation_uri = (evaluate.properties.ProcessingOutputConfig.Outputs["evaluation"]
                      .S3Output.S3Uri)
    card = ProcessingStep(
        name="CreateModelCard", retry_policies=jobs.retry_policies(),
        step_args=jobs.processing(
            "card", {"process": process_uri, "model": model_uri, "evaluation": evaluation_uri},
            {"card": ("output/card", outputs_of("card"))},
            # Every parameter: the card records the config hash of the whole run.
            ["--model-type", model_type, "--train-test-split-ratio", split_ratio.to_string(),
             "--use-smote", use_smote.to_string(), "--f1-threshold", f1_threshold.to_string(),
             "--run-id", execution,
             "--model-card-name", Join(on="-", values=[target.pipeline_name, execution]),
             "--region", target.region]))
    register = jobs.register_model(model_uri, Join(on="/", values=[evaluation_uri,
                                                                   "evaluation.json"]), card)
    metric = primary_metric(bundle.settings.features.label, pipe.gate_metric)
    if metric == "f1":
        first: Any = ConditionGreaterThanOrEqualTo(
            left=JsonGet(step_name=evaluate.name, property_file=report,
                         json_path=F1_JSON_PATH), right=f1_threshold)
        rule = ["the model's F1 must be >= F1Threshold (", f1_threshold, ") and it"]
    else:
        first = ConditionGreaterThan(
            left=JsonGet(step_name=evaluate.name, property_file=decision,
                         json_path=MODEL_VALUE_PATH),
            right=JsonGet(step_name=evaluate.name, property_file=decision,
                          json_path=BASELINE_VALUE_PATH))
        rule = ["the model"]
    failed = FailStep(name="GateFailed", error_message=Join(on="", values=[
        "crimecast gate failed: ", *rule, f" must beat the best naive forecaster on the "
        f"validation {metric}. See evaluation.json and gate.json under ", evaluation_uri]))
    check = ConditionStep(
        name="CheckGate",
        conditions=[
            first,
            ConditionEquals(left=JsonGet(step_name=evaluate.name, property_file=decision,
                                         json_path=GATE_JSON_PATH), right=True),
        ],
        if_steps=[card, register], else_steps=[failed])
    return Pipeline(name=target.pipeline_name,
                    parameters=[model_type, split_ratio, use_smote, f1_threshold, input_data],
                    steps=[process, train, evaluate, check], sagemaker_session=session)


class _JobFactory:
    """Builds the SDK job arguments for the crimecast image (one place for the wiring)."""

    def __init__(self, target: SageMakerTarget, session: Any, bundle_uri: str) -> None:
        self.target = target
        self.session = session
        self.bundle_uri = bundle_uri

    def retry_policies(self) -> list[Any]:
        """Retry capacity/internal errors of the job, and throttling of the step itself."""
        from sagemaker.mlops.workflow.retry import (
            SageMakerJobExceptionTypeEnum,
            SageMakerJobStepRetryPolicy,
            StepExceptionTypeEnum,
            StepRetryPolicy,
        )

        return [
            StepRetryPolicy(exception_types=[StepExceptionTypeEnum.SERVICE_FAULT,
                                             StepExceptionTypeEnum.THROTTLING],
                            interval_seconds=10, backoff_rate=2.0, max_attempts=3),
            SageMakerJobStepRetryPolicy(
                exception_types=[SageMakerJobExceptionTypeEnum.INTERNAL_ERROR,
                                 SageMakerJobExceptionTypeEnum.CAPACITY_ERROR,
                                 SageMakerJobExceptionTypeEnum.RESOURCE_LIMIT],
                interval_seconds=60, backoff_rate=2.0, max_attempts=3),
        ]

    def processing(self, entry: str, inputs: dict[str, Any],
                   outputs: dict[str, tuple[str, Any]], arguments: list[Any]) -> Any:
        """``Processor.run`` step arguments for ``crimecast sagemaker entrypoint ENTRY``."""
        from sagemaker.core.processing import ProcessingInput, ProcessingOutput, Processor
        from sagemaker.core.shapes import ProcessingS3Input, ProcessingS3Output

        processor = Processor(
            role=self.target.role_arn, image_uri=self.target.image_uri, instance_count=1,
            instance_type=self.target.instance_type, entrypoint=[*ENTRYPOINT, entry],
            max_runtime_in_seconds=MAX_RUNTIME_S, base_job_name=f"crimecast-{entry}",
            sagemaker_session=self.session)
        sources = {**inputs, "config": self.bundle_uri}
        return processor.run(
            inputs=[ProcessingInput(input_name=name, s3_input=ProcessingS3Input(
                s3_uri=uri, local_path=f"/opt/ml/processing/input/{name}",
                s3_data_type="S3Prefix", s3_input_mode="File"))
                for name, uri in sources.items()],
            outputs=[ProcessingOutput(output_name=name, s3_output=ProcessingS3Output(
                s3_uri=uri, local_path=f"/opt/ml/processing/{local}",
                s3_upload_mode="EndOfJob")) for name, (local, uri) in outputs.items()],
            arguments=arguments)

    def training(self, features_uri: Any, hyperparameters: dict[str, Any]) -> Any:
        """``ModelTrainer.train`` step arguments: channels ``train`` and ``config``."""
        from sagemaker.core.shapes import StoppingCondition
        from sagemaker.core.training.configs import Compute, InputData, OutputDataConfig
        from sagemaker.train.model_trainer import ModelTrainer

        trainer = ModelTrainer(
            sagemaker_session=self.session, role=self.target.role_arn,
            training_image=self.target.image_uri, base_job_name="crimecast-train",
            compute=Compute(instance_type=self.target.instance_type, instance_count=1),
            stopping_condition=StoppingCondition(max_runtime_in_seconds=MAX_RUNTIME_S),
            output_data_config=OutputDataConfig(s3_output_path=self.target.s3("models")),
            hyperparameters=hyperparameters)
        return trainer.train(input_data_config=[
            InputData(channel_name="train", data_source=features_uri),
            InputData(channel_name="config", data_source=self.bundle_uri)])

    def register_model(self, model_uri: Any, evaluation_json_uri: Any, after: Any) -> Any:
        """A ``RegisterModel`` step (ModelBuilder.register) serving with the same image."""
        from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
        from sagemaker.mlops.workflow import ModelStep
        from sagemaker.mlops.workflow.retry import StepExceptionTypeEnum, StepRetryPolicy
        from sagemaker.serve.model_builder import ModelBuilder

        # dependencies={} stops ModelBuilder from resolving (creating) a default bucket
        # for code it would upload; the image already holds the server.
        builder = ModelBuilder(image_uri=self.target.image_uri, s3_model_data_url=model_uri,
                               role_arn=self.target.role_arn, sagemaker_session=self.session,
                               dependencies={})
        serving = [self.target.serving_instance_type]
        step_args = builder.register(
            model_package_group_name=MODEL_PACKAGE_GROUP, content_types=["application/json"],
            response_types=["application/json"], inference_instances=serving,
            transform_instances=serving, approval_status="PendingManualApproval",
            model_metrics=ModelMetrics(model_statistics=MetricsSource(
                content_type="application/json", s3_uri=evaluation_json_uri)))
        return ModelStep(name="RegisterModel", step_args=step_args, depends_on=[after],
                         retry_policies=[StepRetryPolicy(
                             exception_types=[StepExceptionTypeEnum.SERVICE_FAULT,
                                              StepExceptionTypeEnum.THROTTLING],
                             interval_seconds=10, backoff_rate=2.0, max_attempts=3)])
