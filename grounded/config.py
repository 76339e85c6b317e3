"""Settings dataclasses shared by the Python API, YAML files and the command line.

Why not ``transformers.HfArgumentParser``: it does the same job, but importing transformers
costs over a second, and ``grounded --help`` and the ``kb`` commands must stay cheap. This
module is the small subset we need: dataclass fields → ``--flags`` (help from
``field(metadata={"help": ...})``), and a precedence of defaults < YAML (``--config``) < flags.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _base_type(tp: Any) -> tuple[Any, bool]:
    """``(inner type, optional?)`` of an annotation such as ``int | None``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def _parse_bool(text: str) -> bool:
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def add_dataclass_arguments(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup, cls: type
) -> None:
    """Add one ``--flag`` per field of dataclass ``cls``; defaults stay unset (SUPPRESS).

    Leaving defaults unset lets :func:`build_config` tell a flag the user typed from a
    default, so a YAML file's value is only overridden by an explicit flag.
    """
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init or f.metadata.get("cli") is False:
            continue
        tp, optional = _base_type(hints[f.name])
        default = f.default if f.default is not dataclasses.MISSING else None
        help_text = f.metadata.get("help", "")
        if default is not None and default != "":
            help_text += f" (default: {default})"
        kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": help_text}
        if tp is bool:
            kwargs.update(type=_parse_bool, nargs="?", const=True, metavar="BOOL")
        elif typing.get_origin(tp) is list:
            (inner,) = typing.get_args(tp) or (str,)
            kwargs.update(type=inner, nargs="*")  # a bare flag: the empty list
        elif tp in (int, float, str, Path):
            kwargs.update(type=tp)
        elif typing.get_origin(tp) is typing.Literal:
            kwargs.update(choices=list(typing.get_args(tp)))
        else:
            kwargs.update(type=str)
        if "choices" in f.metadata:
            kwargs["choices"] = f.metadata["choices"]
        parser.add_argument(_flag(f.name), **kwargs)
        del optional


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping of settings.

    Raises:
        FileNotFoundError, ValueError: missing file, bad YAML, or not a mapping (naming the file).
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"`--config` file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise ValueError(f"{path}{where}: invalid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of setting: value, got {type(data).__name__}")
    return data


def build_config(
    cls: type[T],
    args: argparse.Namespace | None = None,
    yaml_values: dict[str, Any] | None = None,
    *,
    origin: str = "--config",
) -> T:
    """Instantiate ``cls`` from defaults < ``yaml_values`` < flags present in ``args``.

    Raises:
        ValueError: a YAML key is not a field of ``cls`` (the message lists valid keys), or
            the dataclass's own validation fails.
    """
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    values: dict[str, Any] = {}
    for key, value in (yaml_values or {}).items():
        if key.replace("-", "_") in names:
            values[key.replace("-", "_")] = value
    if args is not None:
        values.update({k: v for k, v in vars(args).items() if k in names})
    return cls(**values)


def check_yaml_keys(
    yaml_values: dict[str, Any],
    classes: list[type],
    origin: str,
    *,
    extra: set[str] | frozenset[str] = frozenset(),
) -> None:
    """Raise if a YAML key belongs to none of ``classes`` nor ``extra`` (a typo must not pass
    silently)."""
    names = {f.name for c in classes for f in dataclasses.fields(c)} | set(extra)
    unknown = sorted(k for k in yaml_values if k.replace("-", "_") not in names)
    if unknown:
        raise ValueError(
            f"{origin}: unknown setting(s) {unknown}; valid settings are {sorted(names)}"
        )


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a settings dataclass (paths as strings)."""
    out = {}
    for k, v in dataclasses.asdict(config).items():
        out[k] = str(v) if isinstance(v, Path) else v
    return out
