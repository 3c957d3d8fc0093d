#!/bin/sh
# crimecast's SageMaker image entry point.
#   docker run IMAGE serve          -> the inference server on :8080 (/ping, /invocations)
#   docker run IMAGE train          -> the training job (SageMaker's BYOC convention)
#   docker run IMAGE process|evaluate|card|register [options]
#                                   -> the other pipeline steps (processing jobs set
#                                      ContainerEntrypoint to the same command)
#   docker run IMAGE crimecast ...  -> any crimecast command
set -eu

command="${1:-}"
[ "$#" -gt 0 ] && shift
case "$command" in
  serve)
    # SageMaker authenticates and signs every request (IAM/SigV4) before it
    # reaches the container, hence --platform-auth on a non-loopback bind.
    exec crimecast serve --model-dir "${SM_MODEL_DIR:-/opt/ml/model}" --host 0.0.0.0 \
      --port "${SAGEMAKER_BIND_TO_PORT:-8080}" --platform-auth "$@"
    ;;
  train|process|evaluate|card|register)
    exec crimecast sagemaker entrypoint "$command" "$@"
    ;;
  crimecast)
    exec crimecast "$@"
    ;;
  *)
    echo "crimecast image: unknown command '$command'; use serve, train, process, evaluate, card, register or crimecast ..." >&2
    exit 2
    ;;
esac
