"""`fine-tune-assets validate` gives the cookbook's verdicts on the cookbook's own toy file."""

import json

import pytest

from fine_tune_assets_tests.factories import FIXTURES, cli

TOY = FIXTURES / "openai_cookbook_toy_chat.jsonl"


@pytest.mark.slow
def test_toy_file_verdicts(models_dir, tmp_path):
    (tmp_path / "models").symlink_to(models_dir)
    done = cli("validate", str(TOY), "--max-tokens", "4096", "--json", data_dir=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["n_examples"] == 5
    assert report["format_errors"] == {}
    assert report["n_missing_system"] == 1
    assert report["n_missing_user"] == 1
    assert report["n_over_token_limit"] == 1
    assert report["messages_per_example"]["min"] == 2 and report["messages_per_example"]["max"] == 9
    billing = report["billing"]
    assert billing["billable_tokens"] == billing["tokens_in_dataset"] * billing["epochs"] > 0


@pytest.mark.slow
def test_format_errors_give_exit_code_1_and_name_lines(models_dir, tmp_path):
    (tmp_path / "models").symlink_to(models_dir)
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"messages": [{"role": "user", "content": "hi"}]}\n'
                    b'not json\n'
                    b'{"messages": [{"role": "robot", "content": "x"}, {"role": "assistant", "content": "y"}]}\n')
    done = cli("validate", str(bad), "--json", data_dir=tmp_path)
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["format_errors"] == {"unrecognized_role": 1, "example_missing_assistant_message": 1}
    assert report["unreadable_lines"][0]["line"] == 2
    text = cli("validate", str(bad), data_dir=tmp_path)
    assert f"{bad}:2: invalid_json" in text.stdout and "Traceback" not in text.stderr


def test_missing_file_is_a_clear_error(tmp_path):
    done = cli("validate", str(tmp_path / "nope.jsonl"), data_dir=tmp_path)
    assert done.returncode == 2 and "no such file" in done.stderr and "Traceback" not in done.stderr
