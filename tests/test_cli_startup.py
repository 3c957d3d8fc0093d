"""The CLI starts fast (issue #15): importing it, and ``--help`` of any command, loads none
of the heavy libraries; each command imports what it needs when it runs.

Each check runs in a fresh interpreter, since this test process has imported them all.
Not timed here: ``benchmarks/bench_cli_start.py`` measures the wall time.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("polars", "numpy", "sklearn", "mlflow", "lightgbm", "pandas", "fastapi", "shapely",
         "pyarrow", "dask", "xgboost", "catboost", "optuna", "matplotlib", "pyproj", "h3",
         "uvicorn", "boto3", "sagemaker")
# crimecast's own modules that pull those (or pydantic, for the settings) in.
HEAVY_OWN = ("crimecast.config.settings", "crimecast.config.generator", "crimecast.data",
             "crimecast.features", "crimecast.models", "crimecast.pipeline.run",
             "crimecast.serving", "crimecast.registry", "crimecast.cards",
             "crimecast.synthetic", "crimecast.evaluation", "crimecast.executor")

# Imports the CLI, optionally runs it in-process with ARGV, and prints what is loaded.
PROBE = """
import json, sys
argv = json.loads(sys.argv[1])
import crimecast.cli.main
code = None
if argv is not None:
    from typer.testing import CliRunner
    result = CliRunner().invoke(crimecast.cli.main.app, argv)
    code = result.exit_code
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def _loaded(argv: list[str] | None) -> tuple[int | None, list[str]]:
    proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps(argv)], capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    return found["code"], found["modules"]


def _heavy(modules: list[str]) -> list[str]:
    return [name for name in modules
            if name.split(".")[0] in HEAVY
            or any(name == own or name.startswith(own + ".") for own in HEAVY_OWN)]


def test_importing_the_cli_loads_no_heavy_module() -> None:
    _, modules = _loaded(None)
    assert _heavy(modules) == []


@pytest.mark.parametrize("argv", [
    ["--help"],
    [],
    ["predict", "--help"],
    ["serve", "--help"],
    ["run", "--help"],
    ["generate", "--help"],
    ["models", "list", "--help"],
    ["sagemaker", "deploy", "--help"],
])
def test_help_loads_no_heavy_module(argv: list[str]) -> None:
    code, modules = _loaded(argv)
    assert code in (0, 2)  # no_args_is_help exits 2 with the help, as click does
    assert _heavy(modules) == []


def test_help_of_a_subcommand_loads_no_pydantic() -> None:
    """The group's unset --help flag must not make Typer build a pydantic adapter."""
    code, modules = _loaded(["predict", "--help"])
    assert code == 0
    assert "pydantic" not in modules


def test_a_command_error_before_any_work_stays_light() -> None:
    """A bad date fails in the shared error handler (exit 2) before data code loads."""
    code, modules = _loaded(["weather", "--start", "yesterday"])
    assert code == 2
    assert [name for name in _heavy(modules) if not name.startswith("crimecast.data")] == []


def test_every_config_name_is_still_importable() -> None:
    """crimecast.config re-exports its names lazily; each one resolves."""
    import crimecast.config as config

    for name in config.__all__:
        assert getattr(config, name) is not None
    with pytest.raises(AttributeError):
        config.no_such_name  # noqa: B018
