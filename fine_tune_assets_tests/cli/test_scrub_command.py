"""`fine-tune-assets scrub IN OUT`: same records and structure, PII replaced, counts per entity type."""

import json
import shutil

import pytest

from fine_tune_assets_tests.factories import REPO, cli
from fine_tune_assets_tests.pii_patterns import structured_pii


@pytest.mark.slow
def test_scrub_keeps_records_and_structure(tmp_path):
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    examples = [
        {"messages": [{"role": "system", "content": "You triage tickets for Halcyon Broadband."},
                      {"role": "user", "content": "I'm Maria Lopez, account HB-40921733, mail maria.lopez@example.org"},
                      {"role": "assistant",
                       "content": "Thanks Maria Lopez, agent HBE-204817 will call +44 20 7946 0958."}],
         "metadata": {"ticket": 7}},
        {"messages": [{"role": "user", "content": "Is there an outage in Springfield today?"},
                      {"role": "assistant", "content": "Yes, the NOC is on it."}]},
    ]
    src.write_text("\n".join(json.dumps(e) for e in examples) + "\n\n")
    shutil.copytree(REPO / "data" / "config", tmp_path / "config")  # the sample company's policy
    done = cli("scrub", str(src), str(dst), "--workers", "1", data_dir=tmp_path)
    assert done.returncode == 0, done.stderr
    out = [json.loads(line) for line in dst.read_text().splitlines()]
    assert len(out) == 2
    assert out[0]["metadata"] == {"ticket": 7}
    assert [m["role"] for m in out[0]["messages"]] == ["system", "user", "assistant"]
    user, assistant = out[0]["messages"][1]["content"], out[0]["messages"][2]["content"]
    assert "Maria" not in user + assistant and structured_pii(user + assistant) == []
    assert user.startswith("I'm <PERSON_1>") and "Thanks <PERSON_1>" in assistant
    assert out[1] == examples[1]
    for entity in ("PERSON", "EMAIL_ADDRESS", "ACCOUNT_NUMBER", "EMPLOYEE_ID", "PHONE_NUMBER"):
        assert entity in done.stdout
    assert "maria" not in done.stdout.lower()


def test_scrub_refuses_bad_lines_naming_them(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_bytes(b'{"messages": [{"role": "user", "content": "hi"}]}\n{oops\n[1, 2]\n')
    done = cli("scrub", str(src), str(tmp_path / "out.jsonl"), data_dir=tmp_path)
    assert done.returncode == 2
    assert f"{src}:2: invalid_json" in done.stderr and f"{src}:3: not a chat example" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out.jsonl").exists()

