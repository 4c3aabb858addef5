"""PII scrubbing for chat conversations (Presidio + offline spaCy), plain Python, no Dagster.

    policy = load_policy()                       # packaged default, or a YAML path
    result = Scrubber(policy).scrub_conversation(messages)
    for key, result in scrub_conversations(items, policy, workers=2): ...
    residual_pii(scrubbed_text, policy)          # blocking second scan for structured PII
    policy.hash, describe_policy(policy)         # identity and audit record of the policy

Names are imported lazily: importing this package (e.g. in a worker process, or to read a
policy) does not import Presidio until a scrubbing name is used.
"""

import importlib

_EXPORTS = {
    "OperatorSpec": ".schema",
    "PolicyFile": ".schema",
    "PolicyError": ".policy",
    "ScrubPolicy": ".policy",
    "load_policy": ".policy",
    "policy_from_dict": ".policy",
    "PseudonymKeyError": ".operators",
    "normalize_value": ".operators",
    "describe_policy": ".engine",
    "Scrubber": ".scrubber",
    "ScrubResult": ".result",
    "residual_pii": ".scrubber",
    "scrub_conversations": ".pool",
    "scrubber_for": ".pool",
}

__all__ = [
    "OperatorSpec", "PolicyError", "PolicyFile", "PseudonymKeyError", "ScrubPolicy", "ScrubResult", "Scrubber",
    "describe_policy", "load_policy", "normalize_value", "policy_from_dict", "residual_pii",
    "scrub_conversations", "scrubber_for",
]


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
