"""A drift evaluation from names: a reference (``production``, ``latest``, an adapter or a dataset
version) and a candidate (a dataset version, or a raw file put through the pipeline's stages).
The ``drift_report`` asset and ``fine-tune-assets drift`` both call ``evaluate_candidate``."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from ..common.paths import DataPaths
from ..registry.connection import connect
from .drift import DriftReport, evaluate_window, judged_ids
from .file_candidate import prepared_file
from .policy import DriftPolicy, load_drift_policy
from .sources import PRODUCTION, Reference, reference_sample, resolve_reference, version_files, window_sample
from .store import past_evaluations


@dataclass
class DriftEvaluation:
    report: DriftReport
    reference: Reference
    candidate: str  # a dataset version id, or "file:<name>"
    policy: DriftPolicy
    candidate_stages: dict = field(default_factory=dict)  # a file's ingest / scrub / validate counts
    response_format: str = ""  # where the answer-format descriptors came from, or why there are none

    @property
    def drift(self) -> bool:
        return self.report.drift

    @property
    def top_terms(self) -> list[dict]:
        return self.report.detectors.get("classifier", {}).get("details", {}).get("top_terms", [])

    @property
    def over_represented_terms(self) -> list[dict]:
        """The terms family's flagged terms: shares of window and reference records using each."""
        return self.report.detectors.get("terms", {}).get("details", {}).get("top_terms", [])

    def to_dict(self) -> dict:
        return {**self.report.to_dict(), "reference": self.reference.to_dict(), "candidate": self.candidate,
                "candidate_stages": self.candidate_stages, "top_terms": self.top_terms,
                "over_represented_terms": self.over_represented_terms,
                "response_format": self.response_format,
                "policy": {"source": self.policy.source, "hash": self.policy.policy_hash}}


def _response_format(paths: DataPaths) -> tuple[object | None, str]:
    """(the answer format of ``config/evaluation.yaml``, what the report says about it). A spec
    that cannot be read leaves the format descriptors out, and the report says why."""
    from ..evaluation.spec import EvalSpecError, load_eval_spec

    spec = paths.evaluation_spec
    if not spec.exists():
        return None, "no evaluation spec: no answer-format descriptors"
    try:
        fmt = load_eval_spec(spec).response_format
    except EvalSpecError as exc:
        return None, f"evaluation spec unreadable, no answer-format descriptors: {exc}"
    return fmt, f"answer format from {spec.name}: {fmt.kind} {fmt.name}".rstrip()


def evaluate_candidate(paths: DataPaths, candidate: str, reference: str = PRODUCTION,
                       policy: DriftPolicy | None = None, progress: Callable[[str], None] | None = None
                       ) -> DriftEvaluation:
    """Compare ``candidate`` with ``reference`` under ``policy`` (default: the deployment's). Reads
    the registry only; recording is ``store.record_evaluation``'s job."""
    policy = policy or load_drift_policy(paths.drift_policy)
    cap, seed = policy.window.max_records, policy.seed
    file = Path(candidate)
    with connect(paths.registry, read_only=True) as con:
        ref = resolve_reference(con, reference)
        settings = con.execute("SELECT settings FROM dataset_versions WHERE version_id = ?",
                               [ref.version_id]).fetchone()[0]
        history = past_evaluations(con, ref.version_id)
        if not file.is_file():
            from ..registry.resolve import resolve_dataset_version

            version = resolve_dataset_version(con, candidate)
    ref_records, n_ref = reference_sample(ref, cap, seed)
    with ExitStack() as stack:
        stages: dict = {}
        if file.is_file():
            label = f"file:{file.name}"
            files = [_prepare(stack, paths, file, settings, progress, stages)]
        else:
            label = version["version_id"]
            files = version_files(Path(version["path"]))
        window, n_new, n_judged = window_sample(ref, files, cap, seed, judged_ids(history))
    if progress:
        progress(f"drift: reference {ref.version_id[:12]} ({len(ref_records)} of {n_ref} train records), "
                 f"window {len(window)} of {n_new} new records ({n_judged} judged by earlier windows)")
    response_format, format_note = _response_format(paths)
    report = evaluate_window(ref_records, window, policy, n_reference=n_ref, n_new=n_new, n_judged=n_judged,
                             history=history,
                             response_format=response_format)
    return DriftEvaluation(report, ref, label, policy, stages, format_note)


def _prepare(stack: ExitStack, paths: DataPaths, file: Path, settings, progress, stages: dict) -> Path:
    import json

    from ..data.scrub import load_policy
    from ..models.base_model import DEFAULT_BASE_MODEL, load_tokenizer, model_name

    settings = json.loads(settings) if isinstance(settings, str) else dict(settings or {})
    base_model = settings.get("base_model") or DEFAULT_BASE_MODEL
    validated, counts = stack.enter_context(prepared_file(
        paths, file, settings, load_policy(paths.scrub_policy), load_tokenizer(base_model, str(paths.models)),
        model_name(base_model), progress=progress))
    stages.update(counts)
    return validated
