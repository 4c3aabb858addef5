"""The evaluation report renderer: Markdown, HTML (escaping, self-contained) and the loss-curve PNG."""

from __future__ import annotations

import base64
import copy
import re

import pytest

from fine_tune_assets.lib.evaluation.plots import plot_loss_curve
from fine_tune_assets.lib.evaluation.report import render_html, render_markdown

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EVIL = '<script>alert(1)</script> & "x"'


def _metrics(loss, compliance, general_loss, seconds):
    return {"eval_loss": loss, "perplexity": 2.718281828 ** loss, "format_compliance": compliance,
            "field_accuracy": compliance * 0.9,
            "field_accuracy_by_field": {"category": compliance, "priority": compliance * 0.8, "next_action": 0.5},
            "domain_term_recall": 0.12 if compliance == 0 else 0.83, "general_loss": general_loss,
            "general_perplexity": 18.2, "mean_generated_tokens": 80.1, "generation_seconds": seconds,
            "n_generated": 68}


FULL = {
    "adapter_id": "ab12cd34ef56ffeeddccbbaa99887766", "dataset_version": "e6aa0011",
    "base_model": "SmolLM2-135M-Instruct",
    "created_at": "2026-11-30T13:00:00+00:00",
    "eval_set": {"split": "eval", "sha256": "deadbeef" * 8, "n_examples": 68, "n_format_applicable": 63,
                 "n_general_prompts": 24},
    "config": {"response_format": {"kind": "json_schema", "name": "triage_answer.schema.json"},
               "max_new_tokens": 96, "primary_metric": "format_compliance", "max_general_regression": 0.10,
               "domain_terms": ["escalate_noc"]},
    "metrics": {"base": _metrics(2.21, 0.0, 2.9, 61.2), "fine_tuned": _metrics(1.05, 0.95, 3.0, 58.0)},
    "regression": {"metric": "general_loss", "base": 2.9, "fine_tuned": 3.0, "relative_change": 0.034,
                   "threshold": 0.10, "passed": True},
    "gate": {"primary_metric": "format_compliance", "higher_is_better": True, "base": 0.0, "fine_tuned": 0.95,
             "passed": True, "reasons": ["format_compliance 0.950 > base 0.000", "general_loss +3.4% <= +10.0%"]},
    "examples": [{"prompt": "Subject: VPN down\n" + "x" * 600, "reference": '{"category": "network"}',
                  "base": "Sure! Here is ```json\n{}\n``` and ````four````", "fine_tuned": EVIL,
                  "base_compliant": False, "fine_tuned_compliant": True}],
    "training": {"steps": 60, "train_seconds": 540.2, "trained_tokens_per_s": 17.0, "config_hash": "c0ffee",
                 "learning_rate": 1e-3, "per_device_batch_size": 4, "lora_rank": 8},
}
MINIMAL = {"adapter_id": None, "metrics": {"base": {"eval_loss": None}, "fine_tuned": {"eval_loss": 1.5}},
           "gate": {"passed": False}, "examples": [{"prompt": None, "fine_tuned": "ok"}]}


def test_full_markdown_has_verdict_numbers_and_tables():
    md = render_markdown(FULL, loss_curve="loss curve.png")
    assert md.startswith("# Evaluation report: adapter ab12cd34ef56\n")
    assert "**PROMOTION GATE PASSED** — format_compliance 0.950 > base 0.000; general_loss +3.4% <= +10.0%" in md
    assert "| eval loss ↓ | 2.2100 | 1.0500 | -1.1600 (better) |" in md
    assert "| format compliance ↑ (primary) | 0.0% | 95.0% | +95.0 pp (better) |" in md
    assert "| general-text loss (regression check) ↓ | 2.9000 | 3.0000 | +0.1000 (worse) |" in md
    assert "field accuracy (priority)" in md and "| mean generated tokens | 80.1 | 80.1 | +0.0 |" in md
    assert "relative change +3.4% vs threshold +10.0% → PASSED" in md
    assert "![Training loss](loss%20curve.png)" in md
    assert "| learning rate | 0.001 |" in md and "| lora_rank | 8 |" in md
    assert "| eval set sha256 | " + "deadbeef" * 8 + " |" in md
    assert "x" * 400 not in md and "…" in md  # prompt truncated
    assert "✓ compliant" in md and "✗ not compliant" in md


def test_markdown_inline_text_cannot_inject_html_or_break_tables():
    md = render_markdown({**FULL, "base_model": "<b>m</b> | &amp; x"})
    assert "| base model | &lt;b>m&lt;/b> \\| &amp;amp; x |" in md


def test_markdown_fence_survives_backticks():
    md = render_markdown(FULL)
    base_output = FULL["examples"][0]["base"]
    # a five-backtick fence (longer than the ```` run) wraps the base output untouched
    assert "`````text\n" + base_output + "\n`````" in md
    assert "Loss curve" not in md


def test_full_html_escapes_and_is_self_contained():
    png = PNG_SIGNATURE + b"fake"
    page = render_html(FULL, loss_curve="loss.png", loss_curve_bytes=png)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<script" not in page and EVIL not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;x&quot;" in page
    assert "PROMOTION GATE PASSED" in page and "class='verdict pass'" in page
    assert "95.0%" in page and "+95.0 pp (better)" in page and "class='num worse'" in page
    assert "data:image/png;base64," + base64.b64encode(png).decode() in page
    assert "white-space: pre-wrap" in page
    assert not re.search(r"(src|href)=\"(https?:)?//", page)  # no external resources
    linked = render_html(FULL, loss_curve="loss curve.png")
    assert '<img src="loss%20curve.png"' in linked


@pytest.mark.parametrize("render", [render_markdown, render_html])
def test_minimal_report_renders_na(render):
    text = render(MINIMAL)
    assert "PROMOTION GATE FAILED" in text
    assert "Evaluation report: adapter n/a" in text
    assert "n/a" in text and "1.5000" in text and "ok" in text
    assert render({}) and "PROMOTION GATE: n/a" in render({})


def test_rendering_does_not_mutate_the_report():
    report = copy.deepcopy(FULL)
    render_markdown(report)
    render_html(report)
    assert report == FULL


def test_plot_loss_curve_writes_deterministic_png(tmp_path):
    import matplotlib.image

    history = [{"step": s, "loss": 3.0 / s, "learning_rate": 1e-3} for s in range(1, 21)]
    history += [{"step": 10, "eval_loss": 0.9}, {"step": 20, "eval_loss": 0.5, "loss": None}]
    points = {"base model (held-out)": 2.21, "fine-tuned (held-out)": 1.05}
    out = plot_loss_curve(history, tmp_path / "sub" / "loss.png", eval_points=points)
    assert out == tmp_path / "sub" / "loss.png"
    data = out.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert matplotlib.image.imread(out).shape[:2] == (440, 770)  # 7x4 in at 110 dpi
    again = plot_loss_curve(history, tmp_path / "again.png", eval_points=points)
    assert again.read_bytes() == data
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["loss.png"]  # no temp file left


def test_plot_loss_curve_without_losses_writes_nothing(tmp_path):
    target = tmp_path / "loss.png"
    assert plot_loss_curve([{"step": 1, "learning_rate": 1e-3, "loss": None}], target, {"base": 2.0}) is None
    assert plot_loss_curve([], target) is None
    assert not target.exists()


def test_markdown_table_escapes_cells_for_dagster_metadata():
    from fine_tune_assets.lib.common.render import md_table

    assert md_table(["reason", "n"], [["a|b <i>", 3]]) == "| reason | n |\n|---|---|\n| a\\|b &lt;i> | 3 |"
