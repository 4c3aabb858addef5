"""Scoring, spec loading and the promotion gate of the evaluation (pure Python; the model passes are
exercised end to end in defs/training/test_lora_adapter.py)."""

import json

import pytest

from fine_tune_assets.lib.evaluation.gate import champion_gate, promotion_gate
from fine_tune_assets.lib.evaluation.scoring import score_generations, split_prompt
from fine_tune_assets.lib.evaluation.spec import EvalSpec, EvalSpecError, ResponseFormat, load_eval_spec
from fine_tune_assets_tests.factories import REPO, triage_examples

SCHEMA = {"type": "object", "required": ["category", "priority"], "additionalProperties": False,
          "properties": {"category": {"enum": ["billing", "outage"]}, "priority": {"enum": ["P1", "P2"]},
                         "note": {"type": "string"}}}


def spec(**overrides) -> EvalSpec:
    values = {"response_format": ResponseFormat("json_schema", "s.json", SCHEMA),
              "accuracy_fields": ["category", "priority"], "domain_terms": ["HaloBox", "line fault"]}
    return EvalSpec(**{**values, **overrides})


def test_format_compliance_is_strict_and_scored_only_where_the_reference_complies():
    refs = ['{"category": "billing", "priority": "P1"}', '{"category": "outage", "priority": "P2"}',
            '{"category": "outage", "priority": "P1"}', "Sure, I can help with your HaloBox."]
    gens = ['{"category": "billing", "priority": "P2"}',          # compliant, category right, priority wrong
            'Here you go: {"category": "outage", "priority": "P2"}',  # prose around the JSON: not compliant
            '{"category": "outages", "priority": "P1"}',          # value outside the enum: not compliant
            "Please restart the router."]                         # free-text reference: not scored
    scores = score_generations(spec(), refs, gens)
    assert scores["n_format_applicable"] == 3
    assert scores["format_compliance"] == pytest.approx(1 / 3)
    assert scores["field_accuracy_by_field"] == {"category": pytest.approx(1 / 3), "priority": 0.0}
    assert scores["field_accuracy"] == pytest.approx(1 / 6)
    assert [e["compliant"] for e in scores["per_example"]] == [True, False, False, None]
    # One reference uses a domain term (HaloBox), the answer does not.
    assert scores["domain_term_recall"] == 0.0


def test_domain_terms_match_whole_words_case_insensitively():
    scores = score_generations(spec(), ["Reset the HaloBox after the line fault."],
                               ["the halobox shows a LINE FAULT", ])
    assert scores["domain_term_recall"] == 1.0
    assert score_generations(spec(), ["a HaloBox"], ["HaloBoxes"])["domain_term_recall"] == 0.0


def test_regex_format_and_no_format():
    regex = spec(response_format=ResponseFormat("regex", "regex", pattern=r"TICKET-\d+: .+"), accuracy_fields=[])
    scores = score_generations(regex, ["TICKET-1: ok", "TICKET-2: fine"], ["TICKET-9: yes", "ticket 9"])
    assert scores["format_compliance"] == 0.5 and scores["field_accuracy"] is None
    none = score_generations(spec(response_format=ResponseFormat("none")), ["x"], ["y"])
    assert none["format_compliance"] is None and none["n_format_applicable"] == 0


def test_split_prompt_takes_the_last_assistant_turn():
    messages = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                {"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}]
    prompt, reference = split_prompt(messages)
    assert reference == "d" and prompt == messages[:3]


def test_promotion_gate():
    s = spec(max_general_regression=0.1)
    regression, gate = promotion_gate(s, {"format_compliance": 0.0, "general_loss": 2.0},
                                      {"format_compliance": 0.9, "general_loss": 2.1})
    assert gate["passed"] and regression["passed"] and regression["relative_change"] == pytest.approx(0.05)
    _, gate = promotion_gate(s, {"format_compliance": 0.5, "general_loss": 2.0},
                             {"format_compliance": 0.5, "general_loss": 2.0})
    assert not gate["passed"] and "does not beat" in gate["reasons"][0]
    regression, gate = promotion_gate(s, {"format_compliance": 0.0, "general_loss": 2.0},
                                      {"format_compliance": 1.0, "general_loss": 2.5})
    assert not gate["passed"] and not regression["passed"] and "+25.0%" in gate["reasons"][1]
    _, gate = promotion_gate(spec(primary_metric="eval_loss"), {"eval_loss": 2.0}, {"eval_loss": 1.0})
    assert gate["passed"] and gate["higher_is_better"] is False
    _, gate = promotion_gate(s, {"format_compliance": None}, {"format_compliance": None})
    assert not gate["passed"] and "could not be measured" in gate["reasons"][0]


def test_champion_gate_holds_every_measurable_scope_to_the_tolerance():
    s = spec(champion_tolerance=0.02)
    verdict = champion_gate(s, "c" * 64, {"overall": {"champion": 0.90, "challenger": 0.885, "n": 40},
                                          "new_records": {"champion": 0.50, "challenger": 0.80, "n": 10}})
    assert verdict["passed"] and "within the 2% tolerance" in verdict["reasons"][0]
    verdict = champion_gate(s, "c" * 64, {"overall": {"champion": 0.90, "challenger": 0.95, "n": 40},
                                          "new_records": {"champion": 0.80, "challenger": 0.70, "n": 10}})
    assert not verdict["passed"] and "new_records (10 records)" in verdict["reasons"][1]
    verdict = champion_gate(s, "c" * 64, {"overall": {"champion": 0.9, "challenger": 0.9, "n": 40},
                                          "new_records": {"champion": None, "challenger": None, "n": 0}})
    assert verdict["passed"] and verdict["reasons"][1] == "new_records: format_compliance not measurable (0 records)"
    loss = spec(primary_metric="eval_loss", champion_tolerance=0.0)  # lower is better
    assert champion_gate(loss, "c", {"overall": {"champion": 1.0, "challenger": 0.99, "n": 5}})["passed"]
    assert not champion_gate(loss, "c", {"overall": {"champion": 1.0, "challenger": 1.01, "n": 5}})["passed"]


def test_the_shipped_spec_loads_and_every_sample_reference_complies():
    loaded = load_eval_spec(REPO / "data" / "config" / "evaluation.yaml")
    assert loaded.response_format.kind == "json_schema"
    assert loaded.accuracy_fields == ["category", "priority", "next_action"]  # the enum fields, not summary
    assert len(loaded.general_prompts) == 24 and loaded.primary_metric == "format_compliance"
    refs = []
    raw = REPO / "data" / "raw" / "chat_export_2026-10.jsonl"
    for line in raw.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            messages = json.loads(line)["messages"]
            if "triage assistant" in messages[0]["content"]:
                refs.append(split_prompt(messages)[1])
        except (ValueError, TypeError, KeyError, AttributeError, IndexError):
            continue  # the planted malformed records
    scores = score_generations(loaded, refs, refs)
    assert scores["n_format_applicable"] >= 0.95 * len(refs) > 100
    assert scores["format_compliance"] == 1.0 and scores["field_accuracy"] == 1.0


def test_bad_specs_name_the_file_and_the_problem(tmp_path):
    bad = tmp_path / "evaluation.yaml"
    bad.write_text("primary_metric: bleu\n")
    with pytest.raises(EvalSpecError, match="primary_metric must be one of"):
        load_eval_spec(bad)
    bad.write_text("respons_format: {}\n")
    with pytest.raises(EvalSpecError, match=r"unknown key\(s\) \['respons_format'\]"):
        load_eval_spec(bad)
    (tmp_path / "s.json").write_text('{"type": 12}')
    bad.write_text("response_format: {json_schema: s.json}\n")
    with pytest.raises(EvalSpecError, match="not a valid JSON Schema"):
        load_eval_spec(bad)
    (tmp_path / "g.jsonl").write_text('{"messages": []}\nnot json\n')
    bad.write_text("general_prompts: g.jsonl\n")
    with pytest.raises(EvalSpecError, match=r"g.jsonl:2: expected"):
        load_eval_spec(bad)


@pytest.mark.slow
def test_shared_prefix_loss_and_generation_match_row_by_row(tiny_model_dir):
    """The shared system-prompt cache is an optimisation only: same loss, same greedy answers as one row at a time."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from fine_tune_assets.lib.evaluation.inference import assistant_loss, generate_answers
    from fine_tune_assets.lib.models.chat_template import tokenize_split, training_chat_template

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)).eval()
    conversations = [r["messages"] for r in triage_examples()[::5]]  # 10 rows, one system prompt, varied lengths
    conversations.append([{"role": "user", "content": "no system prompt here"},
                          {"role": "assistant", "content": "fine"}])
    rows = tokenize_split(tokenizer, conversations, training_chat_template(tokenizer), 512, "eval")
    shared_loss, count = assistant_loss(model, rows, tokenizer.pad_token_id, batch_size=4)
    total = n = 0
    with torch.no_grad():
        for r in rows:
            labels = torch.tensor([r["labels"]])
            tokens = int((labels[:, 1:] != -100).sum())
            total += float(model(input_ids=torch.tensor([r["input_ids"]]), labels=labels).loss) * tokens
            n += tokens
    assert count == n and abs(shared_loss - total / n) < 1e-4

    prompts = [c[:-1] for c in conversations]
    batched, stats = generate_answers(model, tokenizer, prompts, max_new_tokens=12, batch_size=4)
    single = []
    for prompt in prompts:
        ids = tokenizer(tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True),
                        add_special_tokens=False, return_tensors="pt")["input_ids"]
        out = model.generate(input_ids=ids, max_new_tokens=12, do_sample=False, eos_token_id=tokenizer.eos_token_id,
                             pad_token_id=tokenizer.pad_token_id)[0, ids.shape[1]:].tolist()
        cut = out.index(tokenizer.eos_token_id) if tokenizer.eos_token_id in out else len(out)
        single.append(tokenizer.decode(out[:cut], skip_special_tokens=True))
    assert batched == single
    assert stats["n_generated"] == len(prompts) and stats["mean_generated_tokens"] > 0


def test_spec_errors_name_the_field(tmp_path):
    bad = tmp_path / "evaluation.yaml"
    bad.write_text("max_new_tokens: lots\n")
    with pytest.raises(EvalSpecError, match=r"evaluation.yaml: max_new_tokens: Input should be a valid integer"):
        load_eval_spec(bad)
    bad.write_text("response_format: {json_shema: s.json}\n")  # a typo would otherwise score no format at all
    with pytest.raises(EvalSpecError, match=r"response_format.json_shema: Extra inputs are not permitted"):
        load_eval_spec(bad)
    bad.write_text("response_format: {regex: '('}\n")
    with pytest.raises(EvalSpecError, match=r"response_format.regex does not compile"):
        load_eval_spec(bad)
