"""``fine-tune-assets``: the pipeline's command line for people outside the Dagster UI.

    fine-tune-assets validate FILE [--max-tokens N] [--json]   cookbook-style format and token report
    fine-tune-assets scrub IN.jsonl OUT.jsonl                   scrub a chat file with the project's policy
    fine-tune-assets datasets list [--json]                     published dataset versions, newest first
    fine-tune-assets datasets show VERSION|latest [--json]      one version: counts, sources, checks
    fine-tune-assets plan [--dataset V] [--base MODEL|CONFIG.json] [--method lora|qlora|full] [--json]
                                                                GPU memory, hardware, hours and cost, before training
    fine-tune-assets adapters list|show ID|latest [--json]      trained adapters and their lineage
    fine-tune-assets adapters promote ID|latest --stage S --reason TEXT [--force] [--json]
    fine-tune-assets adapters rollback --stage S --reason TEXT [--json]   back to the stage's previous adapter
    fine-tune-assets adapters stages [--json]                   who holds each stage, and every transition
    fine-tune-assets verify [--json]                            re-hash published files, check the ledger chain
    fine-tune-assets lineage ID|latest | --source FILE | --record ID [--json]   lineage, both directions
    fine-tune-assets erase --record ID | --source FILE --reason TEXT            erasure request
    fine-tune-assets dossier ID|latest [--format md|html] [--output FILE]      audit dossier of an adapter
    fine-tune-assets registry migrate --to postgresql://... [--from FILE]     copy the registry, ledger included
    fine-tune-assets drift --candidate VERSION|FILE [--reference production|latest|ID] [--fail-on-drift] [--json]

An adapter ID is a full id, a unique prefix, ``latest`` or a stage name (``registry.resolve``). Errors in
the input are reported as ``file:line: problem`` or one ``error:`` line with exit code 2, never a stack
trace (``output.answer``). Each command group is one module: ``data``, ``datasets``, ``plan``, ``adapters``, ``audit``,
``monitoring``.
"""

from __future__ import annotations

import argparse

from . import adapters, audit, data, datasets, monitoring, plan, registry

GROUPS = (data, datasets, plan, adapters, audit, monitoring, registry)  # in the order `--help` lists them


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fine-tune-assets", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)
