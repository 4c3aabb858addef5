"""base_model: the model adapters are trained on, as a local folder with an identity for lineage."""

import dagster as dg

from fine_tune_assets.lib.models.base_model import resolve_base_model

from ..openlineage import emits_openlineage
from ..resources import PipelineResource

BASE_MODEL_CODE_VERSION = "base-model-1"


@dg.asset(group_name="training", code_version=BASE_MODEL_CODE_VERSION, kinds={"pytorch", "safetensors"})
@emits_openlineage
def base_model(context: dg.AssetExecutionContext, pipeline: PipelineResource) -> dg.MaterializeResult:
    """Resolves the configured base model (``pipeline.base_model``, the same one whose tokenizer sets
    the token limits of the data stages) into a transformers folder under ``models/``, converting
    the packaged SmolLM2 GGUF once. Its identity (source, revision, sha256 of every weight file,
    chat template hash) is the lineage record an adapter will point to."""
    identity = resolve_base_model(pipeline.base_model, pipeline.paths.models)
    context.log.info(f"base model {identity.name} from {identity.source}")
    return dg.MaterializeResult(
        metadata={
            "name": identity.name,
            "source": identity.source,
            "revision": identity.revision,
            "path": dg.MetadataValue.path(identity.path),
            "architecture": identity.architecture,
            "n_parameters": dg.MetadataValue.int(identity.n_parameters),
            "weights_sha256": dg.MetadataValue.json(identity.weights_sha256),
            "chat_template_sha256": identity.chat_template_sha256 or "(none)",
            "identity_hash": identity.identity_hash,
        },
        data_version=dg.DataVersion(identity.identity_hash),
    )
