"""Argument shapes that several command groups share."""

from __future__ import annotations


def add_list_show(sub, name: str, help_text: str, key: str, list_func, show_func):
    """``NAME list [--json]`` (newest first) and ``NAME show ID|prefix|latest [--json]``; returns the group."""
    group = sub.add_parser(name, help=help_text).add_subparsers(dest=f"{name}_command", required=True)
    listing = group.add_parser("list", help="newest first")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=list_func)
    show = group.add_parser("show", help=f"one {key} (id, unique prefix of 4+ characters, or 'latest')")
    show.add_argument(key)
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=show_func)
    return group
