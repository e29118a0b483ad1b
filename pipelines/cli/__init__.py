"""The `cxrsearch` command line: a thin dispatcher onto one module per subcommand.

Each subcommand module in this package has `parser() -> argparse.ArgumentParser` and
`main(argv) -> int`; tests call `main([...])` directly. Add a subcommand by writing its module and
adding one line to COMMANDS.
"""
from __future__ import annotations

import importlib
import logging
import os
import sys

# subcommand -> module (in this package)
COMMANDS: dict[str, str] = {
    "data": "data",
    "stats": "stats",
    "train": "train",
    "annotate": "annotate",
    "evaluate": "evaluate",
    "eval": "eval",
    "reindex": "reindex",
    "search": "search",
    "similar": "similar",
    "explain": "explain",
    "serve": "serve",
    "bench": "bench",
}


def version() -> str:
    """The installed package's version (from its metadata), or 'unknown' when it is not installed."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as package_version

    try:
        return package_version("cxrsearch")
    except PackageNotFoundError:
        return "unknown"


def _summary(module_name: str) -> str:
    module = importlib.import_module(f"pipelines.cli.{module_name}")
    return (module.__doc__ or "").strip().splitlines()[0]


def usage() -> str:
    lines = ["usage: cxrsearch [--version] COMMAND [ARGS...]", "", "commands:"]
    for name, module in COMMANDS.items():
        lines.append(f"  {name:12s} {_summary(module)}")
    lines.append("")
    lines.append("`cxrsearch COMMAND --help` for the options of one command.")
    return "\n".join(lines)


def dispatch(table: dict[str, str], argv: list[str], prog: str, usage_text) -> int:
    """Run `table[argv[0]]`'s main with the remaining arguments."""
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage_text())
        return 0 if argv else 2
    if argv[0] in ("--version", "-V"):
        print(f"{prog} {version()}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in table:
        print(f"{prog}: unknown command {name!r}; valid: {', '.join(table)}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"pipelines.cli.{table[name]}")
    return int(module.main(rest) or 0)


def setup_logging() -> None:
    """The project's messages (loggers of its packages) go to stderr, plain, at INFO (CXRSEARCH_LOG_LEVEL);
    other libraries' only from WARNING."""
    level = os.environ.get("CXRSEARCH_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    for package in ("models", "indexer", "pipelines", "search_web"):
        logging.getLogger(package).setLevel(level if level in logging.getLevelNamesMapping() else "INFO")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `cxrsearch` console script."""
    from pipelines.errors import PipelineError

    setup_logging()
    argv = sys.argv[1:] if argv is None else argv
    try:
        return dispatch(COMMANDS, argv, "cxrsearch", usage)
    except PipelineError as e:
        print(f"cxrsearch: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("cxrsearch: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
