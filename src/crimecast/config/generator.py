"""Tunables of the synthetic LAPD incident generator (``generator:`` in ``config.yaml``).

They live in the configuration layer, not beside the generator in
:mod:`crimecast.synthetic`, so that :class:`~crimecast.config.Settings` can hold them
without ``config`` importing anything above it.

Defaults are calibrated to real LAPD data (see ``resources/generator/SOURCES.md``).
Out-of-range values raise :class:`crimecast.errors.GenerationError` with a message
that names the field, the rule, the value received and how to fix it.
"""

from __future__ import annotations

from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field, model_validator

from crimecast.errors import GenerationError


class _Rule(NamedTuple):
    low: float
    high: float | None
    low_inclusive: bool
    high_inclusive: bool


_RULES: dict[str, _Rule] = {
    "branching_ratio": _Rule(0.0, 0.9, True, True),
    "max_generations": _Rule(0, 20, True, True),
    "offspring_distance_m": _Rule(0.0, None, True, False),
    "offspring_mean_delay_days": _Rule(0.0, None, False, False),
    "offspring_same_crime_prob": _Rule(0.0, 1.0, True, True),
    "point_jitter_m": _Rule(0.0, None, True, False),
    "temperature_effect_per_degc": _Rule(-0.2, 0.2, True, True),
    "first_of_month_factor": _Rule(0.0, None, False, False),
    "new_year_factor": _Rule(0.0, None, False, False),
    "delay_zero_prob": _Rule(0.0, 1.0, True, True),
    "delay_tail_shape": _Rule(0.0, None, False, False),
    "delay_tail_scale_days": _Rule(0.0, None, False, False),
    "delay_max_days": _Rule(1, None, True, False),
    "zero_coordinate_share": _Rule(0.0, 1.0, True, True),
    "duplicate_share": _Rule(0.0, 0.5, True, True),
    "burn_in_days": _Rule(0, 366, True, True),
    "volume_scale": _Rule(0.0, 5.0, False, True),
}


def _describe(rule: _Rule) -> tuple[str, str]:
    """Return (rule text, fix text) for a numeric range rule."""
    lo = f"{rule.low:g}"
    lo_word = "at least" if rule.low_inclusive else "greater than"
    if rule.high is None:
        fix = f"{lo} or more" if rule.low_inclusive else f"a number greater than {lo}"
        return f"{lo_word} {lo}", fix
    hi = f"{rule.high:g}"
    left = "[" if rule.low_inclusive else "("
    right = "]" if rule.high_inclusive else ")"
    if rule.low_inclusive and rule.high_inclusive:
        fix = f"a number from {lo} to {hi}"
    else:
        hi_word = "at most" if rule.high_inclusive else "less than"
        fix = f"a number {lo_word} {lo} and {hi_word} {hi}"
    return f"in the range {left}{lo}, {hi}{right}", fix


class GeneratorConfig(BaseModel):
    """All tunables of :func:`crimecast.synthetic.generate.generate_incidents`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Self-exciting (Hawkes-like) near-repeat dynamics.
    branching_ratio: float = Field(
        default=0.2,
        description="Expected offspring per event; background is scaled by (1 - ratio).",
    )
    max_generations: int = Field(
        default=4, description="Offspring generations simulated (0 = none)."
    )
    offspring_distance_m: float = Field(
        default=100.0, description="Gaussian sd of offspring offset (m)."
    )
    offspring_mean_delay_days: float = Field(
        default=1.0, description="Mean exponential offspring lag."
    )
    offspring_same_crime_prob: float = Field(
        default=0.7, description="Probability an offspring repeats its parent's crime code."
    )
    # Space.
    point_jitter_m: float = Field(
        default=120.0, description="Gaussian sd added to pooled real points (m)."
    )
    hour_weighted_points: bool = Field(
        default=True,
        description="Draw background locations from real points of the same hour of day.",
    )
    # Time.
    temperature_effect_per_degc: float = Field(
        default=0.01,
        description="Relative change in daily rate per °C above the month's mean temperature "
        "(real 2020-2023 LAPD data show about 0.006).",
    )
    first_of_month_factor: float = Field(
        default=1.4,
        description="Rate multiplier on the 1st of each month (unknown dates default to it).",
    )
    new_year_factor: float = Field(default=1.9, description="Rate multiplier on 1 January.")
    # Reporting delay: 0 days with delay_zero_prob, else 1 + floor(scale * Weibull(shape)).
    delay_zero_prob: float = Field(default=0.53, description="Share of same-day reports.")
    delay_tail_shape: float = Field(default=0.6, description="Weibull shape of the delay tail.")
    delay_tail_scale_days: float = Field(
        default=1.5, description="Weibull scale of the delay tail."
    )
    delay_max_days: int = Field(default=365, description="Longest reporting delay (days).")
    # Export quirks.
    zero_coordinate_share: float = Field(
        default=0.002, description="Share of rows with LAT = LON = 0."
    )
    duplicate_share: float = Field(default=0.0001, description="Share of rows written twice.")
    include_premises: bool = Field(
        default=True, description="Sample Premis Cd/Desc from the real crime-code to premise mix."
    )
    # Volume and warm-up.
    burn_in_days: int = Field(
        default=14, description="Days simulated before start so near-repeat chains are warm."
    )
    volume_scale: float = Field(default=1.0, description="Multiplier on the calibrated volume.")

    @model_validator(mode="after")
    def _check_ranges(self) -> GeneratorConfig:
        for name, rule in _RULES.items():
            value = getattr(self, name)
            too_low = value < rule.low if rule.low_inclusive else value <= rule.low
            too_high = rule.high is not None and (
                value > rule.high if rule.high_inclusive else value >= rule.high
            )
            if too_low or too_high:
                text, fix = _describe(rule)
                raise GenerationError(
                    f"{name} must be {text}; got {value!r}. "
                    f"Set {name} in the generator config to {fix}."
                )
        return self
