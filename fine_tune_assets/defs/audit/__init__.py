"""Group `audit`: model_dossier, and the events an erasure from the CLI reports to the instance."""
