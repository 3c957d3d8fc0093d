"""SageMaker container entry points: the local pipeline's steps, on the container contract.

Each entry point is a thin wrapper: it reads the pipeline bundle and the
execution-time parameters, asks :func:`crimecast.pipeline.run.build_steps` for the
very step ``crimecast run`` would run (same function, same parameters), points
the step's inputs at the folders SageMaker mounted, and calls it. See
:mod:`crimecast.pipeline.container_io` for the paths.

===========  ==========================  ==============================================
entry point  SageMaker job               reads -> writes
===========  ==========================  ==============================================
process      ProcessingStep ``Process``  input/data, input/config -> output/process
train        TrainingStep ``Train``      channels train + config -> SM_MODEL_DIR
evaluate     ProcessingStep ``Evaluate`` input/process, input/model -> evaluation/
                                         (``evaluation.json`` and the gate's ``gate.json``)
card         ``CreateModelCard``         + input/evaluation -> output/card
register     optional (MLflow)           + input/card -> output/register
===========  ==========================  ==============================================

Run one with ``crimecast sagemaker entrypoint STEP`` or
``python -m crimecast.pipeline.container STEP``.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crimecast.data.output import write_json
from crimecast.errors import CrimecastError, PipelineError
from crimecast.pipeline.container_io import (
    LINEAGE_FILE,
    ContainerPaths,
    PipelineBundle,
    RuntimeParams,
    data_files,
    model_tree,
    read_bundle,
    read_hyperparameters,
    write_failure,
)
from crimecast.pipeline.run import build_steps, pipeline_params
from crimecast.pipeline.runner import PipelineRun, StepIO, code_version, hash_payload

logger = logging.getLogger(__name__)

ENTRY_POINTS = ("process", "train", "evaluate", "card", "register")
SERVING_FILES = ("features_meta.json", "units.parquet")


@dataclass(frozen=True)
class JobContext:
    """Everything a wrapper needs: paths, bundle, parameters, run id and lineage."""

    paths: ContainerPaths
    bundle: PipelineBundle
    params: RuntimeParams
    run_id: str
    scratch: Path

    def schema(self) -> str:
        """The schema name, or the embedded column map written to a scratch file."""
        if self.bundle.schema_map is None:
            return self.bundle.schema
        path = self.scratch / Path(self.bundle.schema).name
        path.write_text(self.bundle.schema_map, encoding="utf-8")
        return str(path)

    def lineage(self, process_dir: Path | None) -> dict[str, str]:
        """Data hash (from the Process job), config hash and code version, as locally."""
        settings = self.params.apply(self.bundle.settings)
        data_hash = "unknown"
        if process_dir is not None and (process_dir / LINEAGE_FILE).is_file():
            data_hash = json.loads((process_dir / LINEAGE_FILE).read_text())["data_hash"]
        config = pipeline_params(settings, self.bundle.schema, self.bundle.tune)
        return {"data_hash": data_hash, "config_hash": hash_payload(config),
                "code_version": code_version()}


def run_step(name: str, ctx: JobContext, sources: Mapping[str, Path], out: Path,
             data: Sequence[Path] = (), lineage: dict[str, str] | None = None,
             settings_overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Run the local pipeline's step ``name`` with inputs taken from ``sources``.

    ``sources`` maps an earlier step's name to the folder holding its outputs in
    this container; ``data`` are the raw incident files (Process only).
    """
    settings = ctx.params.apply(ctx.bundle.settings)
    if settings_overrides:
        settings = settings.with_overrides("pipeline", **settings_overrides)
    built = build_steps(settings, ctx.schema(), [str(p) for p in data], ctx.bundle.tune,
                        lineage or {}, ctx.bundle.bootstrap_resamples)
    step = next(s for s in built if s.name == name)
    inputs: dict[str, Path] = {}
    for local, ref in step.inputs.items():
        if ref.startswith("data:"):
            inputs[local] = data[int(ref.split(":")[1])]
            continue
        source, _, filename = ref.partition("/")
        if source not in sources:
            raise PipelineError(f"step '{name}' needs '{ref}', but this job has no input "
                                f"for step '{source}'. Check the job's inputs.")
        path = sources[source] / filename
        if not path.exists():
            raise PipelineError(f"step '{name}' needs '{ref}', which is not at '{path}'. "
                                f"Check that the '{source}' output is wired to this job.")
        inputs[local] = path
    out.mkdir(parents=True, exist_ok=True)
    logger.info("running step %s (run %s) into %s", name, ctx.run_id, out)
    summary = step.func(StepIO(inputs=inputs, out=out, params=step.params, run_id=ctx.run_id))
    missing = [o for o in step.outputs if not (out / o).exists()]
    if missing:
        raise PipelineError(f"step '{name}' did not write {missing}.")
    return summary


def process(ctx: JobContext) -> dict[str, Any]:
    """Clean and featurise the raw files; record the data hash for the model card."""
    files = data_files(ctx.paths.processing_input("data"))
    out = ctx.paths.processing_output("process")
    summary = run_step("process", ctx, {}, out, data=files)
    data_hash = PipelineRun(runs_dir=ctx.scratch, data_files=[str(p) for p in files]).data_hash()
    write_json({"data_hash": data_hash, "data_files": [p.name for p in files]},
               out / LINEAGE_FILE)
    return summary


def train(ctx: JobContext) -> dict[str, Any]:
    """Train into SM_MODEL_DIR and make it a self-contained serving folder."""
    channel = ctx.paths.channel("train")
    model_dir = ctx.paths.model_dir
    summary = run_step("train", ctx, {"process": channel}, model_dir)
    for name in SERVING_FILES:
        if (channel / name).is_file():
            shutil.copy2(channel / name, model_dir / name)
    return summary


def evaluate(ctx: JobContext) -> dict[str, Any]:
    """Score the test period (evaluation.json) and decide the gate (gate.json) beside it."""
    process_dir = ctx.paths.processing_input("process")
    model = model_tree(ctx.paths.processing_input("model"), ctx.scratch)
    out = ctx.paths.evaluation_dir
    summary = run_step("evaluate", ctx, {"process": process_dir, "train": model}, out)
    decision = run_step("gate", ctx, {"evaluate": out}, out)
    return {**summary, "gate_passed": decision["passed"]}


def card(ctx: JobContext, model_card_name: str | None = None,
         region: str | None = None) -> dict[str, Any]:
    """Write the model card; with ``model_card_name``, also create it in SageMaker."""
    process_dir = ctx.paths.processing_input("process")
    evaluation = ctx.paths.processing_input("evaluation")
    sources = {"process": process_dir, "evaluate": evaluation, "gate": evaluation,
               "train": model_tree(ctx.paths.processing_input("model"), ctx.scratch)}
    out = ctx.paths.processing_output("card")
    summary = run_step("card", ctx, sources, out, lineage=ctx.lineage(process_dir))
    if model_card_name:
        from crimecast.pipeline.sagemaker_aws import publish_model_card

        summary["model_card_arn"] = publish_model_card(
            json.loads((out / "model_card.json").read_text()), model_card_name, region)
    return summary


def register(ctx: JobContext, tracking_uri: str | None = None) -> dict[str, Any]:
    """Log the run to MLflow and register it if the gate passed (as ``crimecast run``)."""
    process_dir = ctx.paths.processing_input("process")
    evaluation = ctx.paths.processing_input("evaluation")
    out = ctx.paths.processing_output("register")
    sources = {"process": process_dir, "evaluate": evaluation, "gate": evaluation,
               "card": ctx.paths.processing_input("card"),
               "train": model_tree(ctx.paths.processing_input("model"), ctx.scratch)}
    # Without a tracking server, MLflow's SQLite store lands in the job's output.
    overrides = {"tracking_uri": tracking_uri} if tracking_uri else {"runs_dir": str(out)}
    return run_step("register", ctx, sources, out, lineage=ctx.lineage(process_dir),
                    settings_overrides=overrides)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crimecast sagemaker entrypoint",
        description="Run one pipeline step on the SageMaker container contract.")
    parser.add_argument("step", choices=ENTRY_POINTS)
    parser.add_argument("--root", help="Container root (default $CRIMECAST_CONTAINER_ROOT "
                                       "or /opt/ml).")
    parser.add_argument("--model-type")
    parser.add_argument("--train-test-split-ratio")
    parser.add_argument("--use-smote")
    parser.add_argument("--f1-threshold")
    parser.add_argument("--run-id", default="sagemaker",
                        help="Recorded in the model card and MLflow (the execution id).")
    parser.add_argument("--model-card-name", help="card: also create this SageMaker model card.")
    parser.add_argument("--region", help="card: region for the SageMaker model card.")
    parser.add_argument("--tracking-uri", help="register: MLflow tracking URI.")
    return parser


def run_entrypoint(argv: Sequence[str]) -> dict[str, Any]:
    """Parse ``argv`` and run one entry point; on failure leave SageMaker the reason."""
    args = _parser().parse_args(list(argv))
    paths = ContainerPaths.resolve(args.root)
    training = args.step == "train"
    try:
        hyper = read_hyperparameters(paths.hyperparameters) if training else {}
        cli = {k: getattr(args, k) for k in ("model_type", "train_test_split_ratio",
                                             "use_smote", "f1_threshold")}
        params = RuntimeParams.parse({**hyper, **{k: v for k, v in cli.items() if v}})
        config_dir = (paths.channel("config") if training
                      else paths.processing_input("config"))
        bundle = read_bundle(config_dir)
        with tempfile.TemporaryDirectory(prefix="crimecast-") as scratch:
            ctx = JobContext(paths=paths, bundle=bundle, params=params, run_id=args.run_id,
                             scratch=Path(scratch))
            if args.step == "card":
                summary = card(ctx, args.model_card_name, args.region)
            elif args.step == "register":
                summary = register(ctx, args.tracking_uri)
            else:
                summary = {"process": process, "train": train,
                           "evaluate": evaluate}[args.step](ctx)
    except CrimecastError as exc:
        write_failure(paths, training, f"{args.step}: {exc}")
        raise
    except Exception as exc:
        write_failure(paths, training, f"{args.step}: {type(exc).__name__}: {exc}")
        raise
    logger.info("step %s finished: %s", args.step, json.dumps(summary, default=str))
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m crimecast.pipeline.container STEP``: log to stderr, exit 2 on user errors."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        run_entrypoint(sys.argv[1:] if argv is None else argv)
    except CrimecastError as exc:
        logger.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
