"""Where a SageMaker pipeline goes: region, bucket, role, image, instances; checked offline.

Every value is validated before the SDK sees it, with an error that names the
flag, the rule, the value and the fix. ``crimecast sagemaker export`` needs no AWS
account, so values not given fall back to clearly marked placeholders built on
AWS's documentation account ``111122223333``; ``upsert`` refuses placeholders.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from crimecast import __version__
from crimecast.errors import ConfigError

PLACEHOLDER_ACCOUNT = "111122223333"
DEFAULT_REGION = "us-west-2"
DEFAULT_INSTANCE_TYPE = "ml.m5.xlarge"
DEFAULT_SERVING_INSTANCE_TYPE = "ml.m5.large"
DEFAULT_PIPELINE_NAME = "crimecast"
DEFAULT_PREFIX = "crimecast"
MODEL_PACKAGE_GROUP = "crimecast-hotspots"

_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_ROLE = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):role/[\w+=,.@/-]{1,512}$")
_ECR = re.compile(r"^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?/"
                  r"[a-z0-9]+(?:[._/-][a-z0-9]+)*(?::[\w][\w.-]{0,127}|@sha256:[0-9a-f]{64})?$")
_INSTANCE = re.compile(r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}$")
_PREFIX = re.compile(r"^[a-zA-Z0-9!_.*'()-]+(/[a-zA-Z0-9!_.*'()-]+)*$")


def sagemaker_regions() -> set[str]:
    """Regions where botocore's bundled endpoint data lists SageMaker (no network)."""
    import boto3

    session = boto3.session.Session()
    regions: set[str] = set()
    for partition in session.get_available_partitions():
        regions.update(session.get_available_regions("sagemaker", partition_name=partition))
    return regions


@dataclass(frozen=True)
class SageMakerTarget:
    """A validated destination for the pipeline (see the module docstring)."""

    region: str
    bucket: str
    role_arn: str
    image_uri: str
    instance_type: str = DEFAULT_INSTANCE_TYPE
    serving_instance_type: str = DEFAULT_SERVING_INSTANCE_TYPE
    pipeline_name: str = DEFAULT_PIPELINE_NAME
    prefix: str = DEFAULT_PREFIX
    placeholders: tuple[str, ...] = field(default=())

    def s3(self, *parts: str) -> str:
        """``s3://BUCKET/PREFIX/part/...``."""
        return "/".join([f"s3://{self.bucket}", self.prefix, *parts])


def check_region(region: str) -> str:
    """A SageMaker region name, or ConfigError."""
    if not _REGION.match(region) or region not in sagemaker_regions():
        raise ConfigError(f"--region must be an AWS region where SageMaker runs, such as "
                          f"{DEFAULT_REGION}; got '{region}'. Pass --region {DEFAULT_REGION}.")
    return region


def check_bucket(bucket: str) -> str:
    """A bare S3 bucket name, or ConfigError."""
    if bucket.startswith("s3://"):
        name = bucket.removeprefix("s3://").split("/")[0]
        raise ConfigError(f"--bucket takes a bucket name, not an S3 URI; got '{bucket}'. "
                          f"Pass --bucket {name}.")
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise ConfigError("--bucket must be an S3 bucket name (3-63 lowercase letters, digits, "
                          f"dots or hyphens); got '{bucket}'. Pass e.g. --bucket "
                          "my-crimecast-bucket.")
    return bucket


def check_role(role_arn: str) -> str:
    """An IAM role ARN, or ConfigError."""
    if not _ROLE.match(role_arn):
        raise ConfigError("--role-arn must be an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME); "
                          f"got '{role_arn}'. Pass the ARN of a SageMaker execution role.")
    return role_arn


def check_image(image_uri: str, region: str) -> str:
    """An ECR image URI in ``region`` (SageMaker pulls job images from its own region)."""
    match = _ECR.match(image_uri)
    if not match:
        raise ConfigError(
            "--image-uri must be an Amazon ECR image URI "
            f"(ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPOSITORY:TAG); got '{image_uri}'. Build "
            "the repository's Dockerfile, push it to ECR and pass its URI.")
    if match.group(2) != region:
        raise ConfigError(f"--image-uri must be in the pipeline's region {region}; got an image "
                          f"in {match.group(2)} ('{image_uri}'). Push the image to ECR in "
                          f"{region} or pass --region {match.group(2)}.")
    return image_uri


def check_instance_type(instance_type: str, flag: str = "--instance-type") -> str:
    """A SageMaker instance type (``ml.FAMILY.SIZE``), or ConfigError."""
    if not _INSTANCE.match(instance_type):
        raise ConfigError(f"{flag} must be a SageMaker instance type such as "
                          f"{DEFAULT_INSTANCE_TYPE}; got '{instance_type}'. Pass {flag} "
                          f"{DEFAULT_INSTANCE_TYPE}.")
    return instance_type


def check_pipeline_name(name: str) -> str:
    """A SageMaker pipeline name, or ConfigError."""
    if not _NAME.match(name):
        raise ConfigError("--name must be 1-256 letters, digits or single hyphens, starting "
                          f"with a letter or digit; got '{name}'. Pass --name crimecast.")
    return name


def check_prefix(prefix: str) -> str:
    """An S3 key prefix without leading or trailing slashes, or ConfigError."""
    if not _PREFIX.match(prefix):
        raise ConfigError("--prefix must be an S3 key prefix without leading or trailing "
                          f"slashes (letters, digits, !_.*'()- and /); got '{prefix}'. Pass "
                          "--prefix crimecast.")
    return prefix


def make_target(region: str = DEFAULT_REGION, bucket: str | None = None,
                role_arn: str | None = None, image_uri: str | None = None,
                instance_type: str = DEFAULT_INSTANCE_TYPE,
                serving_instance_type: str = DEFAULT_SERVING_INSTANCE_TYPE,
                pipeline_name: str = DEFAULT_PIPELINE_NAME, prefix: str = DEFAULT_PREFIX,
                account: str | None = None) -> SageMakerTarget:
    """Validate every value; fill the ones not given from ``account`` or placeholders."""
    check_region(region)
    owner = account or PLACEHOLDER_ACCOUNT
    placeholders = []
    if bucket is None:
        bucket = f"sagemaker-{region}-{owner}"
        placeholders += [] if account else ["--bucket"]
    if role_arn is None:
        role_arn = f"arn:aws:iam::{owner}:role/crimecast-sagemaker-execution"
        placeholders += ["--role-arn"]
    if image_uri is None:
        image_uri = f"{owner}.dkr.ecr.{region}.amazonaws.com/crimecast:{__version__}"
        placeholders += [] if account else ["--image-uri"]
    return SageMakerTarget(
        region=region, bucket=check_bucket(bucket), role_arn=check_role(role_arn),
        image_uri=check_image(image_uri, region),
        instance_type=check_instance_type(instance_type),
        serving_instance_type=check_instance_type(serving_instance_type,
                                                  "--serving-instance-type"),
        pipeline_name=check_pipeline_name(pipeline_name), prefix=check_prefix(prefix),
        placeholders=tuple(placeholders))
