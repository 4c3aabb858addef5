"""Group `training`: base_model and lora_adapter (trained in its own process through Pipes)."""
