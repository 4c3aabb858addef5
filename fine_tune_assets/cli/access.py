"""The roles file as the guarded commands (``adapters promote|rollback``, ``erase``) read it, and the one-line
notice they give after acting when a deployment has none: the action was not checked, and the user should know."""

from __future__ import annotations

import sys

from fine_tune_assets.lib.common.paths import DataPaths


def roles(paths: DataPaths):
    """The deployment's ``AccessPolicy`` (``OFF`` without ``config/access.yaml``); a malformed file is an error."""
    from fine_tune_assets.lib.audit.access import load_access

    return load_access(paths.access)


def warn_if_unchecked(paths: DataPaths) -> None:
    """On stderr, so that ``--json`` output stays one document."""
    if paths.access is None:
        print(f"warning: access control not configured (no {paths.config / 'access.yaml'}): anyone may promote, "
              "roll back and erase; see README, 'Roles and approvals'", file=sys.stderr)
