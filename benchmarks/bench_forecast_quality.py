"""Benchmark: forecast quality on the real data, by rolling-origin backtest with retraining.

For each setup of the issue of record (Portland 250 m x 7 d, West LA 250 m x 1 d and
x 8 h) it runs ``crimecast backtest`` (every forecaster, trained at each origin as
``crimecast run`` trains) and prints PAI@1% of the learned model, the ensemble, SEPP,
the champion and the best naive forecaster (chosen on validation at each origin), with
paired bootstrap 95% intervals of the ratios; then the independent yardstick
``../shared/tools/pai_vs_naive.py`` when it is there. The LAPD Feb+Mar 2024 area x 1 h
z-score setup is a ``crimecast run`` (PR-AUC against the best naive forecaster).

Usage: python benchmarks/bench_forecast_quality.py [SETUP ...] [--out bench_out/quality]
Setups: portland_7d westla_1d westla_8h lapd_febmar_1h (default: all). Needs ../shared/data.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
YARDSTICK = REPO.parent / "shared" / "tools" / "pai_vs_naive.py"
CLI = [sys.executable, "-m", "crimecast.cli"]

BACKTESTS: dict[str, list[str]] = {
    "portland_7d": [
        "--data", str(DATA / "portland_nij" / "portland_cfs_2016_aug_nov.csv.gz"),
        "--schema", str(REPO / "config" / "maps" / "portland_nij.yaml"),
        "--spatial-unit", "grid", "--cell-size", "250", "--time-bin", "7d", "--label", "topk",
        "--origins", "2016-09-26:2016-11-28", "--retrain-every", "1"],
    "westla_1d": [
        "--data", str(DATA / "lapd" / "lapd_west_la_2020_2021.csv.gz"), "--schema", "lapd",
        "--spatial-unit", "grid", "--cell-size", "250", "--time-bin", "1d", "--label", "topk",
        "--origins", "2021-03-01:2021-06-28", "--retrain-every", "14"],
    "westla_8h": [
        "--data", str(DATA / "lapd" / "lapd_west_la_2020_2021.csv.gz"), "--schema", "lapd",
        "--spatial-unit", "grid", "--cell-size", "250", "--time-bin", "8h", "--label", "topk",
        "--origins", "2021-03-01:2021-06-28", "--retrain-every", "42"],
}


def _features_args(args: list[str]) -> list[str]:
    """The ``crimecast features`` flags of a backtest (same data, units and bins)."""
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg in ("--origins", "--retrain-every"):
            skip = True
        else:
            out.append(arg)
    return out


def backtest(name: str, root: Path) -> dict[str, object]:
    """Run one backtest setup and the yardstick; return the headline figures."""
    out = root / name
    began = time.perf_counter()
    subprocess.run([*CLI, "backtest", *BACKTESTS[name], "--out", str(out)], check=True)
    seconds = time.perf_counter() - began
    report = json.loads((out / "backtest.json").read_text())
    interval = report["intervals"]["pai@1%"]
    learned = report["learned"]
    rows = {k: interval[k] for k in (learned, "ensemble", "sepp", "champion", "naive_best")
            if k in interval}
    result: dict[str, object] = {"seconds": round(seconds, 1), "pai@1%": rows,
                                 "champions": [o["champion"] for o in report["origins"]]}
    if YARDSTICK.is_file():
        subprocess.run([*CLI, "features", *_features_args(BACKTESTS[name]), "--out",
                        str(out / "features")], check=True, capture_output=True)
        done = subprocess.run([sys.executable, str(YARDSTICK), str(out / "predictions.parquet"),
                               str(out / "features" / "features.parquet"), "1", "1.05"],
                              capture_output=True, text=True, check=False)
        result["yardstick"] = done.stdout.strip().splitlines()[-12:]
    return result


def lapd_run(root: Path) -> dict[str, object]:
    """`crimecast run` on LAPD Feb+Mar 2024, area x 1 h, z-score (PR-AUC)."""
    runs = root / "lapd_runs"
    began = time.perf_counter()
    subprocess.run([*CLI, "run", "--data", str(DATA / "lapd" / "lapd_2024_02_citywide.csv.gz"),
                    "--data", str(DATA / "lapd" / "lapd_2024_03_citywide.csv.gz"),
                    "--runs-dir", str(runs)], check=True, capture_output=True)
    evaluation = json.loads(sorted(runs.glob("*/evaluate/evaluation.json"))[-1].read_text())
    ranking = evaluation["forecasters"]
    naive = ranking["best_naive"]
    return {"seconds": round(time.perf_counter() - began, 1), "metric": ranking["metric"],
            "champion": ranking["champion"], "best_naive": naive,
            "test": {k: ranking["test"][k] for k in (ranking["learned"], "ensemble", "sepp",
                                                     naive)},
            "ratio_learned": ranking["test"][ranking["learned"]] / ranking["test"][naive],
            "ratio_ensemble": ranking["test"]["ensemble"] / ranking["test"][naive]}


def main() -> None:
    """Run the chosen setups and print (and save) their figures."""
    args = sys.argv[1:]
    root = Path(args[args.index("--out") + 1]) if "--out" in args else REPO / "bench_out" / \
        "quality"
    chosen = [a for a in args if not a.startswith("--") and a != str(root)] or [
        *BACKTESTS, "lapd_febmar_1h"]
    root.mkdir(parents=True, exist_ok=True)
    results = {}
    for name in chosen:
        results[name] = lapd_run(root) if name == "lapd_febmar_1h" else backtest(name, root)
        print(name, json.dumps(results[name], indent=1))
        (root / f"{name}.json").write_text(json.dumps(results[name], indent=1) + "\n")


if __name__ == "__main__":
    main()
