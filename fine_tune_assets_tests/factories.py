"""Builders shared by several test modules (test modules never import each other)."""

from fine_tune_assets.defs.data.dataset import dataset_version
from fine_tune_assets.defs.data.ingest import raw_conversations
from fine_tune_assets.defs.data.quality_gates import validated_conversations_checks
from fine_tune_assets.defs.data.scrub import scrubbed_conversations
from fine_tune_assets.defs.data.validate import validated_conversations

DATA_ASSETS = [raw_conversations, scrubbed_conversations, validated_conversations, dataset_version]
DATA_CHECKS = validated_conversations_checks
