"""How every command answers: ``answer`` calls the work, prints its result and turns the errors a user
can fix into one line, so that no command repeats that and none prints a traceback for them.

``answer(args, call, text, *, errors=(), code=None, then=None) -> int`` (the exit code):

- ``call()`` does the work and returns its result: a JSON-able value, in which dates, paths and objects
  with a ``to_dict()`` method are allowed.
- With ``--json`` (``args.json``) the result is printed as indented JSON, non-ASCII kept; otherwise
  ``text(result)`` is printed, a string without the final newline.
- ``code(result)`` is the exit code, 0 without ``code`` (``validate`` and ``verify`` give 1 for a
  file or a registry with problems).
- ``then(result)`` runs after printing, for a follow-up notice (``erase`` tells Dagster); under
  ``--json`` whatever it prints goes to stderr, so stdout stays one JSON document.
- ``UsageError``, the types in ``errors`` (the called domain's refusals) and those every command may
  meet (an unknown id, a locked registry, an unusable base model, mapping or roles file) print
  ``error: MESSAGE`` on stderr and give 2; a refusal by access control (``AccessDenied``, already in the
  ledger) gives 3, so that a script can tell "not allowed" from "wrong". Any other exception is a bug:
  its traceback is shown.
- A reader that stops early (``... | head``) ends the command silently with 0.

Commands import their domain inside the command, so ``--help`` and each command load only what they use.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable
from typing import Any

ACCESS_DENIED = 3  # the exit code of a refusal by access control (lib.audit.access)


class UsageError(Exception):
    """A problem the user can fix; printed without a traceback."""


def _jsonable(value: Any) -> Any:
    """What ``json`` cannot write itself: a result object by its ``to_dict()``, anything else (dates, paths)
    as its string."""
    to_dict = getattr(value, "to_dict", None)
    return to_dict() if callable(to_dict) else str(value)


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, default=_jsonable))


def _for_the_user(exc: Exception, expected: tuple[type[Exception], ...]) -> bool:
    """Whether ``exc``'s message is meant for the user. The errors any command may meet are imported only
    once something was raised, so that startup stays fast."""
    if isinstance(exc, (UsageError, *expected)):
        return True
    from fine_tune_assets.lib.audit.access import AccessError
    from fine_tune_assets.lib.data.mapping import MappingError
    from fine_tune_assets.lib.models.base_model import BaseModelError
    from fine_tune_assets.lib.registry.connection import RegistryBusy, RegistryUnavailable
    from fine_tune_assets.lib.registry.resolve import NotFound

    return isinstance(exc, (MappingError, BaseModelError, RegistryBusy, RegistryUnavailable, NotFound, AccessError))


def answer(args, call: Callable[[], Any], text: Callable[[Any], str], *,
           errors: tuple[type[Exception], ...] = (), code: Callable[[Any], int] | None = None,
           then: Callable[[Any], None] | None = None) -> int:
    as_json = getattr(args, "json", False)
    try:
        result = call()
        if as_json:
            print_json(result)
        else:
            print(text(result))
        if then is not None:
            with contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
                then(result)
        return code(result) if code is not None else 0
    except BrokenPipeError:  # `... | head`: the reader left; not an error worth a traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        from fine_tune_assets.lib.audit.access import AccessDenied

        if isinstance(exc, AccessDenied):
            print(f"error: {exc}", file=sys.stderr)
            return ACCESS_DENIED
        if _for_the_user(exc, errors):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        raise
