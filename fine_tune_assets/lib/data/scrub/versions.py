"""Versions of every library and model whose upgrade can change what is detected.

They are part of the policy hash and of the policy's audit record, so that a dataset scrubbed
with other detection code carries another identity.
"""

from __future__ import annotations

from ...common.versions import installed_version
from .nlp import SPACY_MODEL


def package_version(name: str) -> str:
    return installed_version(name, missing="unknown")


def versions(model_name: str = SPACY_MODEL) -> dict[str, str]:
    """Versions that change detection results; part of the policy hash and the audit record."""
    return {
        "presidio_analyzer": package_version("presidio-analyzer"),
        "presidio_anonymizer": package_version("presidio-anonymizer"),
        "spacy": package_version("spacy"),
        "spacy_model": model_name,
        "spacy_model_version": package_version(model_name.replace("_", "-")),
        "phonenumbers": package_version("phonenumbers"),
        # the given-name and surname lists (names.gazetteers) come from Faker's person providers
        "names": f"faker=={package_version('faker')}",
    }
