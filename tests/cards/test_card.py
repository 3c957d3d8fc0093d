"""Tests for crimecast.cards: card JSON (schema, verbatim metrics, risk rule) and HTML page."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from typing import Any

import pytest

from crimecast.cards.card import build_model_card
from crimecast.cards.html import render_model_card_html
from crimecast.cards.inputs import CardInputs
from crimecast.cards.risk import RISK_RULE, assess_risk
from crimecast.cards.svg import Series, bar_chart, line_chart

BINARY = ("accuracy", "precision", "recall", "f1", "pr_auc", "roc_auc", "brier", "log_loss")
HOTSPOT = ("hit_rate", "pai", "pei_star", "area_share")
EVIL = '<script>alert("x")</script>'
SCHEMA_KEYS = {"model_overview", "intended_uses", "business_details", "training_details",
               "evaluation_details", "additional_information"}


def binary_metrics(base: float, *, f1: float | None = None, null: str | None = None
                   ) -> dict[str, Any]:
    """Binary metrics with awkward floats (so rounding would show) and a CI on each."""
    out: dict[str, Any] = {}
    for i, name in enumerate(BINARY):
        value: float | None = base + i * 0.0123456789012345
        if name == "f1" and f1 is not None:
            value = f1
        if name == null:
            value = None
        out[name] = {"value": value, "standard_deviation": 0.0101010101,
                     "ci_low": None if value is None else value - 0.02,
                     "ci_high": None if value is None else value + 0.02}
    return out


def hotspot_metrics(base: float) -> dict[str, Any]:
    """Hotspot metrics at 1, 5 and 10 % plus the two bin counts."""
    out: dict[str, Any] = {f"{name}@{k}%": {"value": base * (j + 1) + k / 1000.0,
                                           "standard_deviation": 0.0303030303}
                           for j, name in enumerate(HOTSPOT) for k in (1, 5, 10)}
    out.update({"bins_evaluated": 1234, "bins_without_events": 56})
    return out


def evaluation(*, synthetic: bool = True) -> dict[str, Any]:
    """A small but complete evaluation.json: model, three baselines, three areas."""
    return {
        "binary_classification_metrics": binary_metrics(0.6123456789012345, f1=0.5876543210987654),
        "hotspot_metrics": hotspot_metrics(0.4141414141),
        "baselines": {
            "prior_counts": {"binary_classification_metrics": binary_metrics(0.41),
                             "hotspot_metrics": hotspot_metrics(0.3), "decision_threshold": 0.2},
            "historical_average": {"binary_classification_metrics": binary_metrics(0.43),
                                   "hotspot_metrics": hotspot_metrics(0.31),
                                   "decision_threshold": 0.25},
            "kde": {"binary_classification_metrics": binary_metrics(0.45, null="roc_auc"),
                    "hotspot_metrics": hotspot_metrics(0.33), "decision_threshold": 0.27},
        },
        "per_area": {
            "regions": {
                "Central": {"rows": 900, "positives": 120,
                            "binary_classification_metrics": {"f1": {"value": 0.6543210987},
                                                              "pr_auc": {"value": 0.7}},
                            "hotspot_metrics": {"pai@5%": {"value": 3.21},
                                                "hit_rate@5%": {"value": 0.16}}},
                "Hollywood": {"rows": 880, "positives": 90,
                              "binary_classification_metrics": {"f1": {"value": 0.5123456789},
                                                                "pr_auc": {"value": None}},
                              "hotspot_metrics": None},
                EVIL: {"rows": 870, "positives": 80,
                       "binary_classification_metrics": {"f1": {"value": 0.5432109876},
                                                         "pr_auc": {"value": 0.6}},
                       "hotspot_metrics": {"pai@5%": {"value": 2.5},
                                           "hit_rate@5%": {"value": 0.125}}},
            },
            "disparity": {
                "f1": {"max": 0.6543210987, "min": 0.5123456789, "gap": 0.1419754198,
                       "best_region": "Central", "worst_region": "Hollywood"},
                "pr_auc": {"max": 0.7, "min": 0.6, "gap": 0.1, "best_region": "Central",
                           "worst_region": EVIL},
            },
        },
        "decision_threshold": 0.3100000000000001,
        "data": {"label": "zscore", "primary_metric": "pr_auc", "rows_test": 2650,
                 "positive_rate_test": 0.1094, "synthetic": synthetic,
                 "sources": ["synthetic generator seed 7"] if synthetic
                 else ["Crime_Data_from_2020_to_Present.csv"]},
    }


def make_inputs(*, synthetic: bool = True, **overrides: Any) -> CardInputs:
    """Hand-built CardInputs for a passing LightGBM run; ``overrides`` replace fields."""
    features = [f"count_lag_{i}" for i in range(1, 24)] + ["hour_sin", "temp_max"]
    inputs = CardInputs(
        evaluation=evaluation(synthetic=synthetic),
        model_name="crimecast-hotspots", model_type="lightgbm", model_version="3",
        run_id="run-20240601-abc", created_at="2024-06-01T12:00:00+00:00",
        hyper_parameters={"n_estimators": 400, "learning_rate": 0.05, "num_leaves": 31},
        use_smote=False, feature_names=features,
        feature_importance={name: float(len(features) - i) for i, name in enumerate(features)},
        training={"rows_train": 12000, "train_start": "2022-01-01", "train_end": "2023-06-30",
                  "test_start": "2023-07-08", "test_end": "2023-12-31", "gap_bins": 7,
                  "split_ratio": 0.8, "spatial_unit": "area", "time_bin": "1d",
                  "label_rule": "zscore >= 1.0", "positive_rate": 0.11},
        gate={"passed": True, "f1": 0.5876543210987654, "f1_threshold": 0.45,
              "primary_metric": "pr_auc", "model_value": 0.6987654320987654,
              "best_baseline": "kde", "baseline_value": 0.5364197531, "reasons": []},
        excluded_crime_types={"437 RESISTING ARREST": 377, "903 CONTEMPT OF COURT": 41},
        enforcement_exclusion_enabled=True,
        provenance={"sources": ["synthetic generator seed 7"] if synthetic
                    else ["Crime_Data_from_2020_to_Present.csv"],
                    "synthetic": synthetic, "data_hash": "ab12cd34", "config_hash": "ef56",
                    "code_version": "0.1.0+g1234567"},
        curves={"pr_curve": {"precision": [1.0, 0.8, 0.6, 0.2], "recall": [0.0, 0.3, 0.6, 1.0]},
                "calibration": {"mean_predicted": [0.05, 0.15, 0.3, None],
                                "fraction_positive": [0.04, 0.17, 0.28, 0.5],
                                "count": [800, 120, 40, 0]},
                "baseline_pr_curves": {"kde": {"precision": [1.0, 0.5, 0.2],
                                               "recall": [0.0, 0.5, 1.0]}}},
    )
    return dataclasses.replace(inputs, **overrides)


def expected(evaluation_json: dict[str, Any], group: str, name: str) -> Any:
    """The value in evaluation.json that the card entry (group, name) must copy."""
    def value(family: Any, key: str) -> Any:
        metric = family[key]
        return metric["value"] if isinstance(metric, dict) else metric

    if group == "binary_classification_metrics" and name == "decision_threshold":
        return evaluation_json["decision_threshold"]
    if group in ("binary_classification_metrics", "hotspot_metrics"):
        return value(evaluation_json[group], name)
    if group.startswith("baseline: "):
        result = evaluation_json["baselines"][group.removeprefix("baseline: ")]
        if name == "decision_threshold":
            return result[name]
        family = next(f for f in ("binary_classification_metrics", "hotspot_metrics")
                      if name in result[f])
        return value(result[family], name)
    if group == "per_area":
        region, metric = name.rsplit(" / ", 1)
        info = evaluation_json["per_area"]["regions"][region]
        if metric in ("rows", "positives"):
            return info[metric]
        family = next(f for f in ("binary_classification_metrics", "hotspot_metrics")
                      if info[f] and metric in info[f])
        return value(info[family], metric)
    assert group == "per_area_disparity"
    metric, stat = name.split(" / ")
    return evaluation_json["per_area"]["disparity"][metric][stat]


def all_evaluation_metrics(ev: dict[str, Any]) -> set[tuple[str, str]]:
    """Every metric evaluation.json holds, named the way the card names it."""
    names = {("binary_classification_metrics", m) for m in ev["binary_classification_metrics"]}
    names |= {("binary_classification_metrics", "decision_threshold")}
    names |= {("hotspot_metrics", m) for m in ev["hotspot_metrics"]}
    for baseline, result in ev["baselines"].items():
        names |= {(f"baseline: {baseline}", m) for f in ("binary_classification_metrics",
                                                         "hotspot_metrics") for m in result[f]}
        names |= {(f"baseline: {baseline}", "decision_threshold")}
    for region, info in ev["per_area"]["regions"].items():
        names |= {("per_area", f"{region} / {k}") for k in ("rows", "positives")}
        for family in ("binary_classification_metrics", "hotspot_metrics"):
            names |= {("per_area", f"{region} / {m}") for m in info[family] or {}}
    names |= {("per_area_disparity", f"{m} / {s}") for m, stats in
              ev["per_area"]["disparity"].items() for s in stats}
    return names


@pytest.fixture
def inputs() -> CardInputs:
    """A passing, synthetic-data run."""
    return make_inputs()


def test_every_card_metric_equals_the_evaluation_value_exactly(inputs: CardInputs) -> None:
    card = build_model_card(inputs)
    seen: set[tuple[str, str]] = set()
    for group in card["evaluation_details"][0]["metric_groups"]:
        if group["name"] == "curves":
            continue
        for entry in group["metric_data"]:
            want = expected(inputs.evaluation, group["name"], entry["name"])
            assert entry["value"] == want, (group["name"], entry["name"])
            assert type(entry["value"]) is type(want), (group["name"], entry["name"])
            seen.add((group["name"], entry["name"]))
    assert seen == all_evaluation_metrics(inputs.evaluation)


def test_null_metrics_stay_null_and_say_so(inputs: CardInputs) -> None:
    groups = {g["name"]: g for g in build_model_card(inputs)["evaluation_details"][0]
              ["metric_groups"]}
    roc = next(e for e in groups["baseline: kde"]["metric_data"] if e["name"] == "roc_auc")
    assert roc["value"] is None
    assert "null in evaluation.json" in roc["notes"]
    f1 = next(e for e in groups["binary_classification_metrics"]["metric_data"]
              if e["name"] == "f1")
    assert f1["notes"] == "sd 0.0101; CI [0.5677, 0.6077]"


def test_curves_are_linear_graphs_of_the_inputs(inputs: CardInputs) -> None:
    groups = {g["name"]: g for g in build_model_card(inputs)["evaluation_details"][0]
              ["metric_groups"]}
    graphs = {e["name"]: e for e in groups["curves"]["metric_data"]}
    assert graphs["pr_curve"]["type"] == "linear_graph"
    assert graphs["pr_curve"]["value"] == [[0.0, 1.0], [0.3, 0.8], [0.6, 0.6], [1.0, 0.2]]
    assert graphs["calibration"]["value"] == [[0.05, 0.04], [0.15, 0.17], [0.3, 0.28]]
    assert set(graphs) == {"pr_curve", "calibration", "pr_curve / kde"}


def test_card_follows_the_sagemaker_schema_shape(inputs: CardInputs) -> None:
    card = build_model_card(inputs)
    assert set(card) == SCHEMA_KEYS
    json.dumps(card, allow_nan=False)
    overview = card["model_overview"]
    assert overview["problem_type"] == (
        "Binary classification: crime hotspot forecasting per place and time bin")
    assert overview["model_version"] == 3
    assert overview["inference_environment"] == {"container_image": []}
    uses = card["intended_uses"]
    assert set(uses) == {"purpose_of_model", "intended_uses", "factors_affecting_model_efficiency",
                         "risk_rating", "explanations_for_risk_rating"}
    assert uses["risk_rating"] in {"Low", "Medium", "High", "Unknown"}
    assert all(len(v) <= 2048 for v in uses.values())
    assert set(card["business_details"]) == {"business_problem", "business_stakeholders",
                                             "line_of_business"}
    training = card["training_details"]
    assert training["objective_function"]["function"]["function"] == "Maximize"
    assert len(training["objective_function"]["function"]["condition"]) <= 63
    job = training["training_job_details"]
    assert job["training_arn"] is None
    assert {"name": "use_smote", "value": "false"} in job["hyper_parameters"]
    assert all(isinstance(p["value"], str) for p in job["hyper_parameters"])
    assert {"name": "rows_train", "value": 12000} in job["training_metrics"]
    evaluation_detail = card["evaluation_details"][0]
    assert len(evaluation_detail["name"]) <= 63
    assert all(isinstance(v, str) for v in evaluation_detail["metadata"].values())
    names = [g["name"] for g in evaluation_detail["metric_groups"]]
    assert names[:2] == ["binary_classification_metrics", "hotspot_metrics"]
    assert {"baseline: prior_counts", "baseline: historical_average", "baseline: kde",
            "per_area"} <= set(names)
    custom = card["additional_information"]["custom_details"]
    assert all(isinstance(v, str) and len(v) <= 1024 for v in custom.values())
    assert json.loads(custom["gate"]) == inputs.gate
    assert json.loads(custom["excluded_crime_types"]) == inputs.excluded_crime_types
    assert json.loads(custom["provenance"]) == inputs.provenance


def test_non_numeric_version_moves_to_custom_details() -> None:
    card = build_model_card(make_inputs(model_version="v3-candidate"))
    assert "model_version" not in card["model_overview"]
    assert card["additional_information"]["custom_details"]["model_version"] == "v3-candidate"


def test_uses_and_caveats_name_the_scope_exclusions_and_areas(inputs: CardInputs) -> None:
    card = build_model_card(inputs)
    uses = card["intended_uses"]["intended_uses"]
    assert "never persons" in uses and "enforcement decisions about individuals" in uses
    caveat = card["additional_information"]["caveats_and_recommendations"]
    assert "Reported crime is not all crime" in caveat
    assert "437 RESISTING ARREST (377); 903 CONTEMPT OF COURT (41)" in caveat
    assert "0.654 in Central (best) and 0.512 in Hollywood (worst), a gap of 0.142" in caveat
    assert "SYNTHETIC DATA" in caveat
    off = build_model_card(make_inputs(enforcement_exclusion_enabled=False, synthetic=False))
    caveat = off["additional_information"]["caveats_and_recommendations"]
    assert "Feedback loop NOT mitigated" in caveat and "SYNTHETIC" not in caveat


def test_risk_low_when_every_check_passes() -> None:
    risk = assess_risk(make_inputs(synthetic=False))
    assert risk.rating == "Low"
    assert risk.explanation == (
        "Low: the promotion gate passed; the model's pr_auc 0.699 beats the best baseline kde "
        "(0.536); the per-area F1 gap 0.142 is within 0.25; F1 0.588 is at least 0.5; the "
        "PR-AUC confidence interval width 0.040 is within 0.1; the data are real LAPD records, "
        f"not synthetic. {RISK_RULE}")


def test_risk_medium_for_synthetic_data_only(inputs: CardInputs) -> None:
    risk = assess_risk(inputs)
    assert risk.rating == "Medium"
    assert risk.reasons == ("the data are synthetic, not real LAPD records",)
    assert build_model_card(inputs)["intended_uses"]["risk_rating"] == "Medium"


def test_risk_medium_for_weak_f1_or_wide_interval() -> None:
    ev = evaluation(synthetic=False)
    ev["binary_classification_metrics"]["f1"]["value"] = 0.4
    ev["binary_classification_metrics"]["pr_auc"].update(ci_low=0.55, ci_high=0.7)
    risk = assess_risk(make_inputs(synthetic=False, evaluation=ev))
    assert risk.rating == "Medium"
    assert risk.reasons == (
        "F1 0.400 is below 0.5",
        "the PR-AUC confidence interval [0.550, 0.700] is 0.150 wide, more than 0.1")


def test_risk_high_when_the_gate_fails(inputs: CardInputs) -> None:
    gate = {**inputs.gate, "passed": False, "reasons": ["F1 0.41 < 0.45"]}
    risk = assess_risk(dataclasses.replace(inputs, gate=gate))
    assert risk.rating == "High"
    assert risk.explanation == (
        "High: the promotion gate failed (F1 0.41 < 0.45); the data are synthetic, not real "
        f"LAPD records. {RISK_RULE}")


def test_risk_high_when_a_baseline_wins_or_areas_differ_too_much() -> None:
    gate = {**make_inputs().gate, "model_value": 0.5, "baseline_value": 0.5}
    risk = assess_risk(make_inputs(synthetic=False, gate=gate))
    assert risk.rating == "High"
    assert risk.reasons == ("the model's pr_auc 0.500 does not beat the best baseline kde "
                            "(0.500)",)
    ev = evaluation(synthetic=False)
    ev["per_area"]["disparity"]["f1"].update(max=0.7, min=0.4, gap=0.3)
    risk = assess_risk(make_inputs(synthetic=False, evaluation=ev))
    assert risk.rating == "High"
    assert risk.reasons == ("the per-area F1 gap 0.300 (best Central 0.700, worst Hollywood "
                            "0.400) exceeds 0.25",)


def test_risk_respects_lower_is_better_and_falls_back_to_evaluation() -> None:
    gate = {"passed": True, "primary_metric": "brier", "reasons": []}
    risk = assess_risk(make_inputs(synthetic=False, gate=gate))
    # model brier 0.686 is above every baseline's (best: prior_counts 0.484): not better
    assert risk.rating == "High"
    assert risk.reasons == ("the model's brier 0.686 does not beat the best baseline "
                            "prior_counts (0.484)",)


def test_risk_unknown_when_f1_is_undefined() -> None:
    ev = evaluation(synthetic=False)
    ev["binary_classification_metrics"]["f1"]["value"] = None
    risk = assess_risk(make_inputs(synthetic=False, evaluation=ev))
    assert risk.rating == "Unknown"
    assert risk.reasons == ("F1 is undefined on the test set",)


@pytest.fixture
def page(inputs: CardInputs) -> str:
    """The rendered HTML of the synthetic run."""
    return render_model_card_html(build_model_card(inputs), inputs)


def test_html_has_charts_banner_scope_and_mobile_meta(page: str) -> None:
    assert page.count("<svg") >= 4
    assert page.count("<svg") == 5
    assert 'id="synthetic-banner"' in page and "SYNTHETIC DATA" in page
    assert "never persons" in page
    assert "not for enforcement decisions about individuals" in page
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert "@media" in page
    assert "perfect calibration" in page
    assert "437 RESISTING ARREST" in page and "377" in page
    assert "synthetic (generated, not real LAPD records)" in page
    assert "Gate PASSED" in page


def test_html_has_no_synthetic_banner_for_real_data() -> None:
    real = make_inputs(synthetic=False)
    html = render_model_card_html(build_model_card(real), real)
    assert 'id="synthetic-banner"' not in html and "SYNTHETIC DATA" not in html
    assert "real LAPD records" in html


def test_html_loads_nothing_external(page: str) -> None:
    lowered = page.lower()
    assert re.search(r"https?:", lowered) is None
    assert re.search(r"\b(src|href|xlink:href)\s*=", lowered) is None
    for forbidden in ("<script", "<link", "<img", "<iframe", "@import", "url("):
        assert forbidden not in lowered


def test_the_card_draws_every_forecasters_area_curves_as_inline_images() -> None:
    shares = [0.005 * k for k in range(1, 41)]
    curve = {"share": shares, "hit_rate": [min(1.0, 4 * s) for s in shares],
             "pai": [4.0] * 40, "pei_star": [0.5] * 40}
    inputs = make_inputs(curves={"hotspot_curves": {"lightgbm": curve, "sepp": curve,
                                                    "prior_counts_4w": curve}})
    html = render_model_card_html(build_model_card(inputs), inputs)
    section = html[html.index('<section id="area-curves">'):]
    section = section[:section.index("</section>")]
    assert "every forecaster (3;" in section
    assert re.findall(r'\bsrc="([^",]*),', html) == ["data:image/png;base64"]
    assert "img-src data:" in html  # the page's CSP lets only inline images in
    assert "Not drawn for this run" in render_model_card_html(
        build_model_card(make_inputs()), make_inputs())


def test_html_escapes_every_user_string(inputs: CardInputs) -> None:
    nasty = dataclasses.replace(
        inputs, model_name='crimecast "<b>x</b>"',
        gate={**inputs.gate, "reasons": ["<img src=x onerror=alert(1)>"]},
        feature_importance={"<i>feature</i>": 1.0},
        excluded_crime_types={"<u>438</u>": 3})
    html = render_model_card_html(build_model_card(nasty), nasty)
    assert "<script>" not in html and "<b>x</b>" not in html and "<img" not in html
    assert "<i>feature" not in html and "<u>438" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html


def test_comparison_highlights_the_best_value(page: str) -> None:
    # the model has the best f1 (0.5877 against baselines from 0.447 to 0.487)
    row = re.search(r"<tr><td>f1</td>(.*?)</tr>", page)
    assert row is not None
    assert row.group(1).startswith('<td class="num best" title="best">0.5877')
    # brier: lower is better, so the prior_counts baseline (0.484) wins
    brier = re.search(r"<tr><td>brier</td>(.*?)</tr>", page)
    assert brier is not None
    cells = re.findall(r"<td[^>]*>", brier.group(1))
    assert [("best" in c) for c in cells] == [False, True, False, False]


def test_bar_chart_sorts_caps_and_marks_missing() -> None:
    svg = bar_chart(["a", "b", "c"], [0.1, None, 0.5], title="t", x_label="x")
    assert svg.index(">c<") < svg.index(">a<") < svg.index(">b<")
    assert "n/a" in svg
    many = bar_chart([f"f{i}" for i in range(25)], [float(i) for i in range(25)],
                     title="t", x_label="x", max_bars=20)
    assert many.count("<rect") == 21  # background + 20 bars
    assert ">f24<" in many and ">f4<" not in many


def test_line_chart_skips_missing_points_and_says_no_data() -> None:
    svg = line_chart([Series("m", [0.0, None, 1.0], [0.0, 0.5, float("nan")])],
                     title="t", x_label="x", y_label="y")
    assert svg.count("<polyline") == 1
    empty = line_chart([Series("m", [], [])], title="t", x_label="x", y_label="y")
    assert "No data" in empty and "<polyline" not in empty


def test_card_inputs_are_not_mutated(inputs: CardInputs) -> None:
    before = copy.deepcopy(dataclasses.asdict(inputs))
    render_model_card_html(build_model_card(inputs), inputs)
    assert dataclasses.asdict(inputs) == before


def test_numbers_in_the_card_read_as_numbers() -> None:
    from crimecast.cards.inputs import show

    assert [show(v) for v in (11740.0, 11740, 2500.7, 0.123456, 12.5, 1e-5, None, True)] == [
        "11,740", "11,740", "2,501", "0.1235", "12.5", "1e-05", "n/a", "True"]


def test_the_card_says_what_share_of_times_is_estimated() -> None:
    from crimecast.cards.risk import caveats

    inputs = make_inputs()
    inputs = dataclasses.replace(inputs, provenance={**inputs.provenance,
                                                     "estimated_time_share": 0.3742})
    assert any(c.startswith("Estimated times: 37% of the crimes have an estimated time of day")
               for c in caveats(inputs))
    assert not any(c.startswith("Estimated times") for c in caveats(make_inputs()))


def test_the_card_page_shows_its_curves_in_a_browser(tmp_path: Any) -> None:
    from tests.browser import DESKTOP, screenshot

    shares = [0.005 * k for k in range(1, 41)]
    curves = {name: {"share": shares, "hit_rate": [min(1.0, f * s) for s in shares],
                     "pai": [f] * 40, "pei_star": [0.5] * 40}
              for name, f in (("lightgbm", 5.0), ("sepp", 3.0), ("prior_counts_4w", 2.0))}
    inputs = make_inputs(curves={**make_inputs().curves, "hotspot_curves": curves})
    page = tmp_path / "card.html"
    page.write_text(render_model_card_html(build_model_card(inputs), inputs))
    pixels = screenshot(page.as_uri(), tmp_path, "card", window=DESKTOP).reshape(-1, 3)
    r, g, b = pixels.T
    assert (pixels.min(axis=1) > 245).mean() < 0.95  # not blank
    assert int(((r < 40) & (g > 90) & (g < 135) & (b > 160)).sum()) > 300  # lightgbm's blue
    assert int(((r > 190) & (g < 120) & (b < 40)).sum()) > 100  # the second colour
