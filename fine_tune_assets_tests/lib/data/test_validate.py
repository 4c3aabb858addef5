"""Content validation, duplicates and the split: rules that decide what a dataset contains."""

import json

import numpy as np

from fine_tune_assets.lib.data.chat_format import format_errors, role_order_error
from fine_tune_assets.lib.data.dedup import DuplicateFinder
from fine_tune_assets.lib.data.records import Provenance, Record, Rejection
from fine_tune_assets.lib.data.split import split_of
from fine_tune_assets.lib.data.validate import ValidationSettings, check_records
from fine_tune_assets_tests.factories import FIXTURES


def conv(*pairs, system="You triage tickets for Halcyon Broadband."):
    messages = [{"role": "system", "content": system}] if system else []
    for user, assistant in pairs:
        messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    return messages


def record(messages, rid=None):
    rid = rid or f"{abs(hash(json.dumps(messages))):064d}"[-64:]
    return Record(rid, messages, Provenance("f.jsonl", "0" * 64, 1, "jsonl"))


def test_role_order_rules():
    assert role_order_error(conv(("hi", "hello"), ("more", "sure"))) is None
    assert "start with a user" in role_order_error([{"role": "assistant", "content": "x"},
                                                    {"role": "user", "content": "y"},
                                                    {"role": "assistant", "content": "z"}])
    two_users = [{"role": "user", "content": "a"}, {"role": "user", "content": "b"},
                 {"role": "assistant", "content": "c"}]
    assert role_order_error(two_users) == "two user turns in a row"
    assert "end with an assistant" in role_order_error([*conv(("a", "b")), {"role": "user", "content": "c"}])
    assert "system message after" in role_order_error([*conv(("a", "b")), {"role": "system", "content": "c"}])


def test_check_records_reasons_and_token_limit(tokenizer):
    long_answer = "word " * 3000
    items = list(check_records([
        record(conv(("Router down", '{"category": "outage"}'))),
        record([{"role": "assistant", "content": "x"}, {"role": "user", "content": "y"},
                {"role": "assistant", "content": "z"}]),
        record(conv(("   ", "ok"))),
        record(conv(("Long", long_answer))),
    ], tokenizer, ValidationSettings(max_tokens=1024)))
    accepted = [i for i in items if isinstance(i, Record)]
    rejected = [i for i in items if isinstance(i, Rejection)]
    assert len(accepted) == 1 and 10 < accepted[0].extra["n_tokens"] < 100
    assert [i.reason for i in rejected] == ["role_order", "whitespace_only_content", "over_token_limit"]
    assert "limit 1024" in rejected[2].detail


def test_check_records_keeps_input_order_whatever_was_cached(tokenizer):
    """Token counts come from the cache for some records and from the tokenizer for others: the outcomes
    still come out in input order, so a warm run writes the quarantine a cold run writes."""
    ok = record(conv(("Router down", '{"category": "outage"}')))
    cached = record(conv(("Bill too high", '{"category": "billing"}')))
    cached.extra["n_tokens"] = 2000  # as the validate cache hands it over: over the limit below
    batch = [record(conv(("Long", "word " * 3000))), record(conv(("   ", "ok"))), ok, cached,
             record([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])]
    items = list(check_records(batch, tokenizer, ValidationSettings(max_tokens=1024)))
    assert [getattr(i, "reason", "accepted") for i in items] == [
        "over_token_limit", "whitespace_only_content", "accepted", "over_token_limit", "role_order"]
    assert [i.record_id for i in items] == [r.record_id for r in batch]
    assert items[3].detail == "2000 tokens, limit 1024"  # not tokenized again


def test_near_duplicates_match_datasketch_lsh():
    """The finder's own banding proposes the candidates datasketch's MinHashLSH proposes: same verdicts."""
    import random

    from datasketch import LeanMinHash, MinHashLSH

    from fine_tune_assets.lib.data.dedup import SCHEME, SEED, SIGNATURE_DTYPE, fingerprint
    from fine_tune_assets_tests.factories import sample_conversations

    rng = random.Random(7)
    conversations = [c for c in sample_conversations()  # the sample plants malformed ones: not for this test
                     if all(isinstance(m.get("content"), str) and "role" in m for m in c)][:300]
    for messages in rng.sample(conversations, 120):  # near copies: a word dropped, swapped or changed
        words = messages[-1]["content"].split(" ")
        i = rng.randrange(len(words))
        words[i:i + 1] = rng.choice([[], [words[i].upper()], ["router"], [words[i], "please"]])
        conversations.append([*messages[:-1], {**messages[-1], "content": " ".join(words)}])
    ids = sorted((f"{i:064x}", m) for i, m in enumerate(conversations))

    finder = DuplicateFinder(threshold=0.85)
    lsh, kept, exact, normal = MinHashLSH(threshold=0.7, num_perm=128), {}, {}, {}
    ours, theirs = [], []
    for record_id, messages in ids:
        found = fingerprint(messages)
        verdict = finder.check(record_id, known=found)
        ours.append(verdict and (verdict.kind, verdict.kept_record_id))
        if found.content_sha256 in exact:
            theirs.append(("duplicate_exact", exact[found.content_sha256]))
            continue
        exact[found.content_sha256] = record_id
        if found.normal_sha256 in normal:
            theirs.append(("duplicate_near", normal[found.normal_sha256]))
            continue
        normal[found.normal_sha256] = record_id
        minhash = LeanMinHash(seed=SEED, hashvalues=np.frombuffer(found.signature, SIGNATURE_DTYPE), scheme=SCHEME)
        match = next((c for c in sorted(lsh.query(minhash)) if kept[c].jaccard(minhash) >= 0.85), None)
        theirs.append(match and ("duplicate_near", match))
        if match is None:
            lsh.insert(record_id, minhash)
            kept[record_id] = minhash
    assert ours == theirs
    assert sum(d is not None for d in ours) > 100  # the near copies (and the sample's own duplicates) are found


def test_duplicates_exact_near_and_distinct():
    finder = DuplicateFinder(threshold=0.85)
    base = conv((("My HaloBox 6 router reboots every hour since the firmware update last Tuesday, "
                  "and the lights blink orange before it drops the connection."), '{"category": "hardware"}'))
    assert finder.check("a", base) is None
    assert finder.check("b", json.loads(json.dumps(base))).kind == "duplicate_exact"
    shouting = [dict(m, content=m["content"].upper().replace(",", "")) for m in base]
    assert finder.check("c", shouting).kind == "duplicate_near"
    one_word = [dict(m) for m in base]
    one_word[1]["content"] = one_word[1]["content"].replace("hour", "day")
    dup = finder.check("d", one_word)
    assert dup is not None and dup.kind == "duplicate_near" and dup.kept_record_id == "a"
    other = conv(("I was billed twice for FiberMax 500 this month, please refund the second charge.",
                  '{"category": "billing"}'))
    assert finder.check("e", other) is None


def test_split_is_deterministic_and_stable_as_data_grows():
    ids = [f"{i:064x}" for i in range(2000)]
    first = {i: split_of(i, 0.1) for i in ids[:1000]}
    grown = {i: split_of(i, 0.1) for i in ids}
    assert all(grown[i] == s for i, s in first.items())
    share = sum(s == "eval" for s in grown.values()) / len(grown)
    assert 0.07 < share < 0.13


def test_cookbook_format_codes_on_the_toy_file():
    with open(FIXTURES / "openai_cookbook_toy_chat.jsonl") as handle:
        examples = [json.loads(line) for line in handle if line.strip()]
    assert len(examples) == 5
    assert all(format_errors(e) == [] for e in examples)
    assert format_errors([]) == ["data_type"]
    assert format_errors({"messages": [{"role": "bot", "content": ""}]}) == [
        "unrecognized_role", "missing_content", "example_missing_assistant_message"]


def test_rejection_rows_round_trip():
    r = Rejection("x" * 64, "validate", "role_order", "two user turns in a row",
                  Provenance("f.jsonl", "0" * 64, 3, "jsonl"), messages=[{"role": "user", "content": "<PERSON_1>"}])
    row = r.to_row()
    assert row["source_line"] == 3 and json.loads(row["messages_json"])[0]["content"] == "<PERSON_1>"


def test_validate_file_with_and_without_duplicates(tmp_path, tokenizer):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from fine_tune_assets.lib.data.content_cache import ContentCache
    from fine_tune_assets.lib.data.records import RECORD_SCHEMA
    from fine_tune_assets.lib.data.validate import validate_cache_schema, validate_file

    def run(conversations, name):
        rows = [record(m, f"{i:064x}").to_row() for i, m in enumerate(conversations)]
        source = tmp_path / f"{name}.parquet"
        pq.write_table(pa.Table.from_pylist(rows, schema=RECORD_SCHEMA), source)
        rejected = []
        cache = ContentCache(tmp_path / "staging", "validate", {"test": name}, validate_cache_schema())
        summary = validate_file(source, tmp_path / f"{name}-out.parquet", tokenizer, ValidationSettings(),
                                rejected.append, cache)
        return summary, [r.reason for r in rejected], pq.read_table(tmp_path / f"{name}-out.parquet")

    distinct = [conv(("Router down", '{"category": "outage"}')), conv(("Bill too high", '{"category": "billing"}'))]
    summary, reasons, out = run(distinct, "distinct")  # nothing for the duplicate table to hold
    assert (summary.inputs, summary.accepted, reasons, out.num_rows) == (2, 2, [], 2)
    assert out.column_names == [*RECORD_SCHEMA.names, "n_tokens"]
    summary, reasons, out = run([*distinct, distinct[0]], "repeated")
    assert (summary.accepted, reasons, out.num_rows) == (2, ["duplicate_exact"], 2)
