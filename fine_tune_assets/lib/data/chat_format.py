"""Structural checks of chat examples.

The first seven codes are the format checks of OpenAI's cookbook ("Data preparation and analysis
for chat model fine-tuning"), with its names and semantics, so a report from this tool reads like
the one teams already know. The rest are stricter checks that the pipeline adds before training
(torchtune-style role order, whitespace-only turns).
"""

from __future__ import annotations

import itertools
from typing import Any

COOKBOOK_FORMAT_ERRORS = (
    "data_type",
    "missing_messages_list",
    "message_missing_key",
    "message_unrecognized_key",
    "unrecognized_role",
    "missing_content",
    "example_missing_assistant_message",
)
COOKBOOK_ROLES = ("system", "user", "assistant", "function")
PIPELINE_ROLES = ("system", "user", "assistant")
ALLOWED_MESSAGE_KEYS = ("role", "content", "name", "function_call", "weight")


def format_errors(example: Any, roles: tuple[str, ...] = COOKBOOK_ROLES) -> list[str]:
    """The cookbook's format errors of one example, each code at most once, in the cookbook's order."""
    if not isinstance(example, dict):
        return ["data_type"]
    messages = example.get("messages")
    if not messages or not isinstance(messages, list):
        return ["missing_messages_list"]
    found: set[str] = set()
    for message in messages:
        if not isinstance(message, dict):
            found.add("message_missing_key")
            continue
        if "role" not in message or "content" not in message:
            found.add("message_missing_key")
        if any(key not in ALLOWED_MESSAGE_KEYS for key in message):
            found.add("message_unrecognized_key")
        if message.get("role") not in roles:
            found.add("unrecognized_role")
        content = message.get("content")
        if (not content and not message.get("function_call")) or not isinstance(content, str):
            found.add("missing_content")
    if not any(isinstance(m, dict) and m.get("role") == "assistant" for m in messages):
        found.add("example_missing_assistant_message")
    return [code for code in COOKBOOK_FORMAT_ERRORS if code in found]


def role_order_error(messages: list[dict]) -> str | None:
    """System only first; then user and assistant alternate, starting with user, ending with assistant."""
    roles = [m["role"] for m in messages]
    body = roles[1:] if roles and roles[0] == "system" else roles
    if "system" in body:
        return "system message after the first turn"
    if not body or body[0] != "user":
        return "conversation does not start with a user turn"
    for previous, current in itertools.pairwise(body):
        if previous == current:
            return f"two {current} turns in a row"
    if body[-1] != "assistant":
        return "conversation does not end with an assistant turn"
    return None


def has_whitespace_only_turn(messages: list[dict]) -> bool:
    return any(isinstance(m.get("content"), str) and not m["content"].strip() for m in messages)


def has_invalid_weight(messages: list[dict]) -> bool:
    """A message's training ``weight`` other than 0 or 1: OpenAI's fine-tuning format allows only those, and
    a dataset version stores it as an integer (a string, a float or a bool there would fail the publish)."""
    return any("weight" in m and (type(m["weight"]) is not int or m["weight"] not in (0, 1)) for m in messages)


def canonical_messages(messages: list[dict]) -> list[dict]:
    """The message fields a dataset keeps: role, content and the optional per-message training weight."""
    out = []
    for message in messages:
        kept = {"role": message["role"], "content": message["content"]}
        if "weight" in message:
            kept["weight"] = message["weight"]
        out.append(kept)
    return out
