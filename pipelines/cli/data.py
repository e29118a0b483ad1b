"""Obtain and prepare data: fetch reports, mine labels and splits, render synthetic images."""
from __future__ import annotations

import importlib

from pipelines.cli import dispatch

# data subcommand -> module (in this package)
DATA_COMMANDS: dict[str, str] = {
    "fetch": "data_fetch",
    "prepare": "data_prepare",
    "synth": "data_synth",
    "contact-sheet": "data_contact_sheet",
}


def usage() -> str:
    lines = ["usage: cxrsearch data SUBCOMMAND [ARGS...]", "", "subcommands:"]
    for name, module in DATA_COMMANDS.items():
        doc = (importlib.import_module(f"pipelines.cli.{module}").__doc__ or "").strip().splitlines()[0]
        lines.append(f"  {name:15s} {doc}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    return dispatch(DATA_COMMANDS, argv, "cxrsearch data", usage)
