"""Group `data`: raw_conversations, scrubbed_conversations, validated_conversations (+ its blocking
quality gates), dataset_version, and the new_raw_files sensor."""
