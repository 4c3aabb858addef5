"""fine_tune_assets: raw conversations to PII-free dataset versions and evaluated LoRA adapters.

Importing the package sets the offline defaults every entry point needs (the Dagster code server,
the CLI, the Pipes workers, tests and benchmarks all import it first), so no module sets them again:

- ``TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS=""``: Presidio's e-mail recognizer would otherwise download
  the public suffix list (and hang behind a firewall). It must be set before Presidio is imported.
- ``HF_HUB_OFFLINE=1``, ``HF_DATASETS_OFFLINE=1``: models come from local folders and installed
  packages, never a hub, and ``datasets`` (TRL's input type) never looks one up.
- ``GX_ANALYTICS_ENABLED=False``: Great Expectations sends no usage statistics.
- ``RAY_USAGE_STATS_ENABLED=0``: Ray (the scrub stage's ``ray`` executor) sends none either; its
  Ray workers inherit it from the process that starts a local Ray.

A value the user has already set wins (``setdefault``).
"""

import os

OFFLINE_DEFAULTS = {
    "TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS": "",
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "GX_ANALYTICS_ENABLED": "False",
    "RAY_USAGE_STATS_ENABLED": "0",
}

for _name, _value in OFFLINE_DEFAULTS.items():
    os.environ.setdefault(_name, _value)
