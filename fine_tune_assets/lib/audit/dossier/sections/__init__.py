"""The sections of the dossier, in the order they appear: each builds one section from a ``DossierContext``."""

from .approvals import approvals
from .data import data
from .deidentification import deidentification
from .evaluation import evaluation
from .gates import gates
from .identity import identity
from .integrity import integrity
from .operations import DRIFT_POLICY_GAP, operations
from .training import training

SECTIONS = (identity, data, deidentification, gates, training, evaluation, operations, approvals, integrity)

__all__ = ["DRIFT_POLICY_GAP", "SECTIONS"]
