"""Every flag an error message or hint names exists (issue #11: messages advised
``--shift-start-hour``, ``--z-threshold`` and ``--crs``, which did not)."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import typer

import crimecast
from crimecast.cli import app
from crimecast.pipeline.container import _parser

# Flags of other programs that crimecast's hints quote verbatim (``mlflow server``,
# ``aws sagemaker create-model``).
FOREIGN = {"--backend-store-uri", "--default-artifact-root", "--help", "--model-name",
           "--primary-container", "--execution-role-arn"}
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*[a-z0-9]")


def _typer_options(command: Any, found: set[str]) -> set[str]:
    for param in command.params:
        found.update(o for o in (*param.opts, *param.secondary_opts) if o.startswith("--"))
    for sub in getattr(command, "commands", {}).values():
        _typer_options(sub, found)
    return found


def _flags_in_strings() -> dict[str, list[str]]:
    """Each ``--flag`` written in a string literal of crimecast's source, with where."""
    found: dict[str, list[str]] = {}
    root = Path(crimecast.__file__).parent
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                for flag in FLAG.findall(node.value):
                    found.setdefault(flag, []).append(f"{path.relative_to(root)}:{node.lineno}")
    return found


def test_every_flag_named_in_a_message_is_a_real_option() -> None:
    options = _typer_options(typer.main.get_command(app), set())
    options |= {o for o in _parser()._option_string_actions if o.startswith("--")}
    unknown = {flag: where for flag, where in _flags_in_strings().items()
               if flag not in options | FOREIGN}
    assert unknown == {}


def test_the_scan_sees_the_messages_it_checks() -> None:
    flags = _flags_in_strings()
    assert {"--shift-start-hour", "--z-threshold", "--cell-size", "--encoding"} <= set(flags)
