"""Build Presidio's AnalyzerEngine for a policy, offline, and describe what it runs.

Why here: ``AnalyzerEngine()`` on defaults tries to download ``en_core_web_lg`` and loads ~40
recognizers for other countries. This builds the spaCy engine explicitly on the installed
``en_core_web_sm`` copy and registers only the recognizers that the policy's entities need. The
policy's audit record (``describe_policy``) lists those same recognizers, so it lives here too.
"""

from __future__ import annotations

import bisect
import logging

import yaml
from presidio_analyzer import AnalyzerEngine, EntityRecognizer, RecognizerRegistry
from presidio_analyzer.context_aware_enhancers import LemmaContextAwareEnhancer
from presidio_analyzer.nlp_engine import NlpEngineProvider
from presidio_analyzer.predefined_recognizers import (
    EmailRecognizer,
    IpRecognizer,
    SpacyRecognizer,
    UsSsnRecognizer,
)

from .cues import CueNameRecognizer
from .nlp import LANGUAGE, NER_ENTITIES, SPACY_MODEL, nlp_configuration
from .person import CaseNormalizedNameRecognizer, FilteredSpacyRecognizer, ProperNounNameRecognizer
from .policy import SCRUB_LOGIC_VERSION, ScrubPolicy
from .recognizers import (
    CaseInsensitiveIbanRecognizer,
    DateOfBirthRecognizer,
    MultiRegionPhoneRecognizer,
    PaymentCardRecognizer,
    StreetAddressRecognizer,
)
from .versions import versions

logger = logging.getLogger(__name__)

# Pattern recognizers that need no NLP, per entity: also the residual check's (``residual_pii``).
STRUCTURED_RECOGNIZERS = {
    "EMAIL_ADDRESS": EmailRecognizer,
    "PHONE_NUMBER": MultiRegionPhoneRecognizer,
    "US_SSN": UsSsnRecognizer,
    "CREDIT_CARD": PaymentCardRecognizer,
    "IBAN_CODE": CaseInsensitiveIbanRecognizer,
    "IP_ADDRESS": IpRecognizer,
}


class IndexedContextEnhancer(LemmaContextAwareEnhancer):
    """Presidio's lemma context enhancer with its lookups indexed: the same context words, in time
    linear in the text. The stock one walks the whole ``Doc`` to find each finding's token and tests
    keywords against a list, so a pasted log with a thousand IP addresses costs findings x tokens."""

    def __init__(self) -> None:
        super().__init__()
        self._index: tuple = (None, [], frozenset())

    def _extract_surrounding_words(self, nlp_artifacts, word: str, start: int) -> list[str]:
        if not nlp_artifacts.tokens:
            return [""]
        if self._index[0] is not nlp_artifacts:  # findings of one text come together
            ends = [idx + len(tok) for idx, tok in zip(nlp_artifacts.tokens_indices, nlp_artifacts.tokens)]
            self._index = (nlp_artifacts, ends, frozenset(nlp_artifacts.keywords))
        _, ends, keywords = self._index
        i = bisect.bisect_right(ends, start)  # the first token that ends after the match starts
        if i >= len(ends):
            raise ValueError(f"Did not find the match at {start} in the list of tokens")
        lemmas = nlp_artifacts.lemmas
        backward = self._add_n_words(i, self.context_prefix_count, lemmas, keywords, True)
        forward = self._add_n_words(i, self.context_suffix_count, lemmas, keywords, False)
        return list(set(backward + forward))


def build_nlp_engine(model_name: str = SPACY_MODEL, sentences_from_parser: bool = False):
    """The offline spaCy engine. Only sentence starts are read from the dependency parser, so the
    model's small sentence recogniser (``senter``, shipped disabled) replaces it: ~10% faster, and
    the same findings on the sample and both benchmark sets (``bench/scrub_throughput.py`` checks)."""
    engine = NlpEngineProvider(nlp_configuration=nlp_configuration(model_name)).create_engine()
    if not engine.is_loaded():
        engine.load()
    nlp = engine.nlp[LANGUAGE]
    if not sentences_from_parser and "parser" in nlp.pipe_names and "senter" in nlp.disabled:
        nlp.disable_pipe("parser")
        nlp.enable_pipe("senter")
    return engine


def structured_recognizers(policy: ScrubPolicy) -> list[EntityRecognizer]:
    """Pattern recognizers that need no NLP: reused by ``residual_pii``."""
    out: list[EntityRecognizer] = [
        make() for entity, make in STRUCTURED_RECOGNIZERS.items() if entity in policy.entities
    ]
    out.extend(custom_recognizers(policy))
    return out


def custom_recognizers(policy: ScrubPolicy) -> list[EntityRecognizer]:
    """The company's recognizers from the policy's YAML file (Presidio's recognizer format)."""
    if not policy.recognizers_file:
        return []
    registry = RecognizerRegistry(supported_languages=[LANGUAGE])
    registry.add_recognizers_from_yaml(policy.recognizers_file)
    wanted = set(policy.entities)
    out = []
    for rec in registry.recognizers:
        if set(rec.supported_entities) & wanted:
            out.append(rec)
        else:
            logger.warning("recognizer %s ignored: its entities %s are not in the policy",
                           rec.name, rec.supported_entities)
    return out


def all_recognizers(policy: ScrubPolicy, nlp=None) -> list[EntityRecognizer]:
    """Every recognizer the policy needs. ``nlp`` (a spaCy Language) enables the case-normalised pass."""
    wanted = set(policy.entities)
    recognizers = structured_recognizers(policy)
    ner_entities = sorted(wanted & set(NER_ENTITIES))
    if ner_entities:
        recognizers.append(FilteredSpacyRecognizer(supported_language=LANGUAGE, supported_entities=ner_entities))
    if "PERSON" in wanted and policy.name_heuristics:
        recognizers.append(ProperNounNameRecognizer())
        recognizers.append(CueNameRecognizer())
        if nlp is not None:
            recognizers.append(CaseNormalizedNameRecognizer(nlp))
    if "STREET_ADDRESS" in wanted:
        recognizers.append(StreetAddressRecognizer())
    if "DATE_OF_BIRTH" in wanted:
        recognizers.append(DateOfBirthRecognizer())
    covered = {e for r in recognizers for e in r.supported_entities}
    missing = wanted - covered
    if missing:
        # anything else the policy names (US_PASSPORT, UK_NHS ...): Presidio's predefined recognizers
        registry = RecognizerRegistry(supported_languages=[LANGUAGE])
        registry.load_predefined_recognizers(languages=[LANGUAGE])
        for rec in registry.recognizers:
            if set(rec.supported_entities) & missing and not isinstance(rec, SpacyRecognizer):
                recognizers.append(rec)
        covered = {e for r in recognizers for e in r.supported_entities}
        if wanted - covered:
            raise ValueError(f"no recognizer for entities {sorted(wanted - covered)}")
    return recognizers


def build_analyzer(policy: ScrubPolicy) -> AnalyzerEngine:
    """AnalyzerEngine with the offline spaCy engine and only the policy's recognizers."""
    nlp_engine = build_nlp_engine(policy.spacy_model)
    registry = RecognizerRegistry(supported_languages=[LANGUAGE])
    for rec in all_recognizers(policy, nlp=nlp_engine.nlp[LANGUAGE]):
        registry.add_recognizer(rec)
    return AnalyzerEngine(
        registry=registry,
        nlp_engine=nlp_engine,
        supported_languages=[LANGUAGE],
        default_score_threshold=0.0,
        context_aware_enhancer=IndexedContextEnhancer(),
    )


def residual_entities(policy: ScrubPolicy) -> set:
    """The policy's entities that the pattern-only residual scan looks for (PERSON: names in cue slots)."""
    custom = set()
    if policy.recognizers_file:
        custom = set(_custom_entities(policy.recognizers_file))
    names = {"PERSON"} if policy.name_heuristics else set()
    return (set(STRUCTURED_RECOGNIZERS) | custom | names) & set(policy.entities)


def _custom_entities(path: str):
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    for rec in data.get("recognizers", []):
        if rec.get("supported_entity"):
            yield rec["supported_entity"]
        yield from rec.get("supported_entities") or []


def describe_policy(policy: ScrubPolicy) -> dict:
    """JSON-able audit record of a policy and the recognizers it runs (never the pseudonym key)."""
    recognizers = [
        {"name": r.name, "entities": sorted(r.supported_entities)} for r in all_recognizers(policy)
    ]
    if "PERSON" in policy.entities and policy.name_heuristics:
        recognizers.append({"name": "CaseNormalizedNameRecognizer", "entities": ["PERSON"]})
    return {
        "policy_hash": policy.hash,
        "source": policy.source,
        "entities": sorted(policy.entities),
        "score_threshold": policy.score_threshold,
        "entity_thresholds": dict(sorted(policy.entity_thresholds.items())),
        "operators": {
            "default": policy.operator.as_dict(),
            **{k: v.as_dict() for k, v in sorted(policy.entity_operators.items())},
        },
        "pseudonym_key_env": policy.pseudonym_key_env if policy.uses_pseudonyms else None,
        "recognizers_file": policy.recognizers_file,
        "recognizers_file_sha256": policy.recognizers_file_sha256,
        "recognizers": recognizers,
        "residual_check": {
            "entities": sorted(residual_entities(policy)),
            "threshold": policy.residual_threshold,
        },
        "versions": versions(policy.spacy_model),
        "logic_version": SCRUB_LOGIC_VERSION,
    }
