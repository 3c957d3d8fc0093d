# crimecast image for SageMaker: processing, training and serving.
# Build and push (no Docker engine exists in the development sandbox, so this
# file has not been built there):
#   docker build -t crimecast .
#   docker tag crimecast ACCOUNT.dkr.ecr.REGION.amazonaws.com/crimecast:0.1.0
#   docker push ACCOUNT.dkr.ecr.REGION.amazonaws.com/crimecast:0.1.0
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# libgomp: the OpenMP runtime LightGBM and XGBoost link against.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/crimecast
COPY pyproject.toml README.md ./
COPY src ./src
# boto3 lets the CreateModelCard job create the SageMaker model card.
RUN pip install . "boto3>=1.34,<2"

COPY docker/entrypoint.sh /usr/local/bin/crimecast-entrypoint
RUN chmod +x /usr/local/bin/crimecast-entrypoint

# SageMaker mounts /opt/ml; run from a neutral folder so ./config is not picked up.
WORKDIR /opt/ml
EXPOSE 8080
ENTRYPOINT ["crimecast-entrypoint"]
