"""Settings dataclasses shared by the Python API, YAML files and the command line.

Why not ``transformers.HfArgumentParser``: it does the same job, but importing transformers
costs over a second, and ``grounded --help`` and the ``kb`` commands must stay cheap. This
module is the small subset we need: dataclass fields → ``--flags`` (help from
``field(metadata={"help": ...})``), a precedence of defaults < YAML (``--config``) < flags,
and one type conversion for both (``learning_rate: 1e-4`` is a string to PyYAML; here it is
the float the field declares).

**Composed configs.** A field whose type is a settings dataclass is a *section*
(``TrainConfig.optim`` is an :class:`OptimConfig`). Every leaf setting has one *flat name*,
unique in the whole tree: its field name, or ``metadata["flag"]`` where the field name alone
would be ambiguous (``InjectionConfig.modes`` is ``injection``). The flat name is the flag
(``--learning-rate``), the key of a flat YAML file (``learning_rate: 1e-4``) and of an older
flat settings file. A YAML file may also be nested (``optim: {learning_rate: 1e-4}``);
:func:`to_dict` writes the nested form. ``metadata["aliases"]`` lists older names that are
still read (``epochs`` for ``num_train_epochs``); ``metadata["cli"] = False`` marks a
setting that is derived when the config is used (not a flag, not a flat key).

The optimiser settings that pretraining, training and the fact-checker share are one
section, :class:`grounded.optim.OptimConfig`.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import functools
import math
import types
import typing
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

T = TypeVar("T")
Unknown = Literal["error", "warn", "ignore"]


# -- the settings tree ---------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """One leaf setting of a (possibly composed) config class.

    Attributes:
        name: the flat name (flag ``--name-with-dashes``, flat YAML key).
        path: attribute path from the root config, e.g. ``("optim", "learning_rate")``.
        type: the resolved annotation of the field.
        field: the dataclass field.
        default: the default in the root config (a section's default is its parent's).
        aliases: older flat names still read.
        cli: False for derived settings (no flag, no flat key; nested YAML only).
    """

    name: str
    path: tuple[str, ...]
    type: Any
    field: dataclasses.Field = dataclasses.field(repr=False, compare=False)
    default: Any = dataclasses.field(default=None, repr=False, compare=False)
    aliases: tuple[str, ...] = ()
    cli: bool = True

    @property
    def flag(self) -> str:
        return _flag(self.name)

    @property
    def key(self) -> str:
        """The dotted nested key, e.g. ``optim.learning_rate``."""
        return ".".join(self.path)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _is_section(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


@functools.cache
def sections(cls: type) -> dict[str, type]:
    """The section fields of ``cls``: field name → settings dataclass."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if _is_section(hints[f.name])}


@functools.cache
def settings(cls: type) -> tuple[Setting, ...]:
    """Every leaf setting of ``cls``, sections included, in declaration order.

    Raises:
        TypeError: two settings share a flat name or alias (a bug in the config classes).
    """
    out: list[Setting] = []

    def walk(c: type, prefix: tuple[str, ...], defaults: Any) -> None:
        hints = typing.get_type_hints(c)
        for f in dataclasses.fields(c):
            if not f.init:
                continue
            tp = hints[f.name]
            default = getattr(defaults, f.name) if defaults is not None else _field_default(f)
            if _is_section(tp):
                walk(tp, (*prefix, f.name), default if default is not dataclasses.MISSING else None)
                continue
            out.append(
                Setting(
                    name=f.metadata.get("flag", f.name),
                    path=(*prefix, f.name),
                    type=tp,
                    field=f,
                    default=default,
                    aliases=tuple(f.metadata.get("aliases", ())),
                    cli=f.metadata.get("cli", True) is not False,
                )
            )

    walk(cls, (), None)
    seen: dict[str, str] = {}
    secs = sections(cls)
    for s in out:
        if not s.cli:
            continue
        for name in (s.name, *s.aliases):
            # A flat name may equal the name of its own section only: `injection: text`
            # (the leaf) and `injection: {modes: [text]}` (the section) differ by type.
            clash = seen.get(name) or (name if name in secs and s.path[0] != name else None)
            if clash:
                raise TypeError(
                    f"{cls.__name__}: settings `{s.key}` and `{clash}` share the name {name!r}"
                )
            seen[name] = s.key
    return tuple(out)


@functools.cache
def _lookup(cls: type) -> dict[str, Setting]:
    """Names a mapping for ``cls`` may use → setting: flat names, aliases, and the direct
    field names of ``cls``'s own leaves."""
    table: dict[str, Setting] = {}
    for s in settings(cls):
        if len(s.path) == 1:
            table[s.path[0]] = s
        if s.cli:
            for name in (s.name, *s.aliases):
                table[name] = s
    return table


def setting_names(cls: type) -> list[str]:
    """The flat names of ``cls``'s settings (what flags and flat YAML keys are called)."""
    return [s.name for s in settings(cls) if s.cli]


# -- type conversion -----------------------------------------------------------------------


def _base_type(tp: Any) -> tuple[Any, bool]:
    """``(inner type, optional?)`` of an annotation such as ``int | None``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        optional = len(args) < len(typing.get_args(tp))
        if len(args) == 1:
            return args[0], optional
        return typing.Union[tuple(args)], optional  # noqa: UP007 (a runtime union)
    return tp, False


def _type_name(tp: Any) -> str:
    inner, optional = _base_type(tp)
    origin = typing.get_origin(inner)
    if origin is typing.Literal:
        name = f"one of {list(typing.get_args(inner))}"
    elif origin in (list, tuple, Sequence, typing.Sequence):
        args = typing.get_args(inner)
        name = (
            f"a list of {_type_name(args[0]).removeprefix('a ').removeprefix('an ')}s"
            if args
            else "a list"
        )
    elif origin in (typing.Union, types.UnionType):
        name = " or ".join(_type_name(a) for a in typing.get_args(inner))
    else:
        name = {
            bool: "true or false",
            int: "an integer",
            float: "a number",
            str: "a string",
            Path: "a path",
        }.get(inner, getattr(inner, "__name__", str(inner)))
    return f"{name} or null" if optional else name


class _Mismatch(ValueError):
    pass


def _parse_bool(text: str) -> bool:
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _convert(value: Any, tp: Any) -> Any:
    inner, optional = _base_type(tp)
    if value is None:
        if optional or inner is Any:
            return None
        raise _Mismatch
    origin = typing.get_origin(inner)
    if inner is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        for arm in typing.get_args(inner):
            try:
                return _convert(value, arm)
            except (_Mismatch, ValueError, TypeError):
                continue
        raise _Mismatch
    if inner is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str):
            try:
                return _parse_bool(value)
            except argparse.ArgumentTypeError:
                raise _Mismatch from None
        raise _Mismatch
    if inner is int:
        if isinstance(value, bool):
            raise _Mismatch
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                try:
                    value = float(value)
                except ValueError:
                    raise _Mismatch from None
        if isinstance(value, float) and value.is_integer():
            return int(value)  # `max_steps: 1e3`
        raise _Mismatch
    if inner is float:
        if isinstance(value, bool):
            raise _Mismatch
        if isinstance(value, str):
            try:
                value = float(value.strip())  # PyYAML reads `1e-4` (no dot) as a string
            except ValueError:
                raise _Mismatch from None
        if isinstance(value, (int, float)) and not math.isnan(value):
            return float(value)
        raise _Mismatch
    if inner is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise _Mismatch
    if inner is Path:
        if isinstance(value, (str, Path)):
            return Path(value)
        raise _Mismatch
    if origin is typing.Literal:
        choices = typing.get_args(inner)
        for c in choices:
            if value == c or (isinstance(value, (int, float)) and str(value) == str(c)):
                return c
        raise _Mismatch
    if origin in (list, tuple, Sequence, typing.Sequence):
        args = typing.get_args(inner)
        item = args[0] if args else Any
        items = list(value) if isinstance(value, (list, tuple)) else [value]
        converted = [_convert(v, item) for v in items]
        return tuple(converted) if origin is tuple else converted
    if origin is dict or inner is dict:
        if isinstance(value, Mapping):
            return dict(value)
        raise _Mismatch
    return value


def convert(value: Any, tp: Any, where: str) -> Any:
    """``value`` converted to annotation ``tp`` (int, float, bool, str, Path, list[...],
    Literal, Optional, unions).

    Strings are parsed (``"1e-4"`` → 0.0001, ``"yes"`` → True), integral floats become
    ints (``1e3`` → 1000), a single value becomes a one-item list.

    Raises:
        ValueError: the value does not fit; the message starts with ``where`` (the file and
            key, or the flag), then gives the value and the expected type.

    Example:
        >>> convert("1e-4", float, "train.yaml: `learning_rate`")
        0.0001
        >>> convert("fast", float, "train.yaml: `learning_rate`")
        Traceback (most recent call last):
        ...
        ValueError: train.yaml: `learning_rate`: expected a number, got 'fast' (str)
    """
    try:
        return _convert(value, tp)
    except (_Mismatch, TypeError):
        hint = ""
        inner, _ = _base_type(tp)
        if isinstance(value, bool) and inner is str:
            hint = "; YAML reads yes/no/on/off/true/false as booleans: quote the value"
        raise ValueError(
            f"{where}: expected {_type_name(tp)}, got {value!r} ({type(value).__name__}){hint}"
        ) from None


# -- flags ---------------------------------------------------------------------------------


def _metavar(tp: Any) -> str:
    inner, _ = _base_type(tp)
    if typing.get_origin(inner) in (list, tuple):
        (inner,) = typing.get_args(inner)[:1] or (str,)
    return {int: "INT", float: "FLOAT", bool: "BOOL", Path: "PATH"}.get(inner, "STR")


def _show_default(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(map(str, value)) or "none"
    return str(value)


def add_dataclass_arguments(
    parser: argparse.ArgumentParser, cls: type, title: str | None = None
) -> None:
    """Add one ``--flag`` per setting of dataclass ``cls``, grouped by section in ``--help``.

    The top-level settings form the group ``title`` (default: the class name); each section
    forms the group ``title: section``. Defaults stay unset (``argparse.SUPPRESS``) so
    :func:`build_config` can tell a flag the user typed from a default, and a YAML value is
    only overridden by an explicit flag. Aliases are accepted but not listed.
    """
    title = title or cls.__name__
    groups: dict[tuple[str, ...], Any] = {}
    hints = typing.get_type_hints(cls)
    section_help = {
        f.name: f.metadata.get("help")
        for f in dataclasses.fields(cls)
        if _is_section(hints[f.name])
    }
    for s in settings(cls):
        if not s.cli:
            continue
        where = s.path[:-1]
        if where not in groups:
            name = f"{title}: {'.'.join(where)}" if where else title
            groups[where] = parser.add_argument_group(
                name, section_help.get(where[0]) if where else None
            )
        tp, _ = _base_type(s.type)
        help_text = s.field.metadata.get("help", "")
        if s.default is not dataclasses.MISSING and s.default not in (None, ""):
            help_text += f" (default: {_show_default(s.default)})"
        if s.aliases:
            help_text += f" (also: {', '.join(_flag(a) for a in s.aliases)})"
        kwargs: dict[str, Any] = {
            "dest": s.name,
            "default": argparse.SUPPRESS,
            "help": help_text.replace("%", "%%"),
            "metavar": _metavar(s.type),
        }
        if tp is bool:
            kwargs.update(type=_parse_bool, nargs="?", const=True)
        elif typing.get_origin(tp) in (list, tuple):
            (inner,) = typing.get_args(tp)[:1] or (str,)
            kwargs.update(type=inner if inner in (int, float, str, Path) else str, nargs="*")
        elif tp in (int, float, str, Path):
            kwargs.update(type=tp)
        elif typing.get_origin(tp) is typing.Literal:
            kwargs.update(choices=list(typing.get_args(tp)))
            kwargs.pop("metavar")
        else:
            kwargs.update(type=str)
        if "choices" in s.field.metadata:
            kwargs["choices"] = s.field.metadata["choices"]
            kwargs.pop("metavar", None)
        groups[where].add_argument(s.flag, **kwargs)
        for alias in s.aliases:
            groups[where].add_argument(_flag(alias), **{**kwargs, "help": argparse.SUPPRESS})


# -- YAML, dicts and configs ---------------------------------------------------------------


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


def _suggest(key: str, candidates: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, list(candidates), n=1)
    if close:
        return f"; did you mean `{close[0]}`?"
    return f"; valid settings are {sorted(set(candidates))}"


def _entries(
    cls: type, values: Mapping[str, Any], origin: str, unknown: Unknown, prefix: str = ""
) -> list[tuple[tuple[str, ...], Any, str]]:
    """``(path, converted value, key as written)`` for each setting in ``values``."""
    out: list[tuple[tuple[str, ...], Any, str]] = []
    secs = sections(cls)
    table = _lookup(cls)
    for raw_key, value in values.items():
        if not isinstance(raw_key, str):
            raise ValueError(f"{origin}: setting names must be strings, got {raw_key!r}")
        key = raw_key.replace("-", "_")
        if key in secs and isinstance(value, secs[key]):
            out.append(((key,), value, f"{prefix}{raw_key}"))  # a whole section, as an object
            continue
        if key in secs and (isinstance(value, Mapping) or key not in table):
            if not isinstance(value, Mapping):
                raise ValueError(
                    f"{origin}: `{prefix}{raw_key}` is a section of settings; give a mapping "
                    f"(`{raw_key}: {{{setting_names(secs[key])[0]}: ...}}`), got {value!r}"
                )
            inner_unknown: Unknown = "warn" if unknown == "warn" else "error"
            for path, v, k in _entries(
                secs[key], value, origin, inner_unknown, f"{prefix}{raw_key}."
            ):
                out.append(((key, *path), v, k))
            continue
        setting = table.get(key)
        if setting is None:
            if unknown == "ignore":
                continue
            message = f"{origin}: unknown setting `{prefix}{raw_key}`" + _suggest(
                key, [*table, *secs]
            )
            if unknown == "warn":
                warnings.warn(message + "; ignored", stacklevel=5)
                continue
            raise ValueError(message)
        where = f"{origin}: `{prefix}{raw_key}`"
        out.append((setting.path, convert(value, setting.type, where), f"{prefix}{raw_key}"))
    return out


def _nest(cls: type, values: Mapping[str, Any], origin: str, unknown: Unknown) -> dict[str, Any]:
    """``values`` (flat, nested or mixed names) as a nested dict of converted values.

    Raises:
        ValueError: a value does not convert, a setting is given twice (say, flat and
            nested), or an unknown key where ``unknown`` is ``error`` (inside a section,
            unknown keys are errors unless ``unknown`` is ``warn``).
    """
    nested: dict[str, Any] = {}
    given: dict[tuple[str, ...], str] = {}
    for path, value, key in _entries(cls, values, origin, unknown):
        # the same setting twice, or a whole section and a setting inside it
        clash = next((p for p in given if p[: len(path)] == path or path[: len(p)] == p), None)
        if clash is not None:
            raise ValueError(
                f"{origin}: `{given[clash]}` and `{key}` both set `{'.'.join(path)}`; keep one"
            )
        given[path] = key
        node = nested
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return nested


def _apply(cls: type[T], values: Mapping[str, Any], base: T | None) -> T:
    """Build ``cls`` from nested ``values`` on top of ``base`` (or the defaults)."""
    secs = sections(cls)
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        if name in secs and not isinstance(value, Mapping):
            kwargs[name] = value  # a whole section, given as an object
        elif name in secs:
            if base is not None:
                sub_base = getattr(base, name)
            else:
                f = next(f for f in dataclasses.fields(cls) if f.name == name)
                sub_base = _field_default(f)
                sub_base = None if sub_base is dataclasses.MISSING else sub_base
            kwargs[name] = _apply(secs[name], value, sub_base)
        else:
            kwargs[name] = value
    if base is not None:
        return dataclasses.replace(base, **kwargs) if kwargs else base  # type: ignore[type-var]
    return cls(**kwargs)


def config_from_dict(
    cls: type[T],
    data: Mapping[str, Any],
    *,
    origin: str = "<dict>",
    unknown: Unknown = "error",
    base: T | None = None,
) -> T:
    """``cls`` from a flat, nested or mixed mapping (a YAML file, a saved settings file).

    Values go through :func:`convert`; aliases (older names) are read. Sections missing
    from ``data`` keep ``base``'s values (default: ``cls``'s defaults, a section's
    defaults being those its parent declares).

    Args:
        cls: the config class.
        data: setting → value; keys may use ``-`` for ``_``.
        origin: names the source in error messages (a file path).
        unknown: what an unknown key does: ``error`` (YAML), ``warn`` (files written by
            another version), ``ignore`` (a mapping shared by several classes).
        base: a config to update instead of the defaults.

    Raises:
        ValueError: a value does not convert (naming origin, key, value and expected type),
            an unknown key with ``unknown="error"`` (naming the closest valid key), or the
            config's own validation.

    Example:
        >>> from grounded.optim import OptimConfig
        >>> config_from_dict(OptimConfig, {"learning_rate": "1e-4", "epochs": 2}).learning_rate
        0.0001
    """
    return _apply(cls, _nest(cls, data, origin, unknown), base)


def update_config(config: T, values: Mapping[str, Any], *, origin: str = "<dict>") -> T:
    """A copy of ``config`` with ``values`` (flat or nested names) applied.

    Example:
        >>> from grounded.optim import OptimConfig
        >>> update_config(OptimConfig(), {"epochs": 1}).num_train_epochs
        1.0
    """
    return config_from_dict(type(config), values, origin=origin, base=config)


def build_config(
    cls: type[T],
    args: argparse.Namespace | None = None,
    yaml_values: Mapping[str, Any] | None = None,
    *,
    origin: str = "--config",
    base: T | None = None,
) -> T:
    """Instantiate ``cls`` from defaults (or ``base``) < ``yaml_values`` < flags in ``args``.

    ``yaml_values`` may hold keys of other classes (one file feeds a command's several
    configs); :func:`check_yaml_keys` rejects keys no class knows. Keys inside a section
    of ``cls`` must be known.

    Raises:
        ValueError: a YAML value does not convert (the message names ``origin``, the key,
            the value and the expected type), or the dataclass's own validation fails.
    """
    nested = _nest(cls, yaml_values or {}, origin, "ignore")
    if args is not None:
        for s in settings(cls):
            if s.cli and s.name in vars(args):
                node = nested
                for part in s.path[:-1]:
                    node = node.setdefault(part, {})
                node[s.path[-1]] = convert(getattr(args, s.name), s.type, f"`{s.flag}`")
    return _apply(cls, nested, base)


def check_yaml_keys(
    yaml_values: Mapping[str, Any],
    classes: Sequence[type],
    origin: str,
    *,
    extra: set[str] | frozenset[str] = frozenset(),
) -> None:
    """Raise if a YAML key belongs to none of ``classes`` nor ``extra`` (a typo must not pass
    silently); the message names the key and the closest valid one."""
    names = set(extra)
    for c in classes:
        names |= set(_lookup(c)) | set(sections(c))
    for key in yaml_values:
        if str(key).replace("-", "_") not in names:
            raise ValueError(
                f"{origin}: unknown setting `{key}`"
                + _suggest(str(key).replace("-", "_"), sorted(names))
            )


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready nested dict of a settings dataclass (paths as strings, tuples as lists).

    Example:
        >>> from grounded.optim import OptimConfig
        >>> to_dict(OptimConfig())["num_train_epochs"]
        3.0
    """
    return _plain(dataclasses.asdict(config))


def flatten(config: Any) -> dict[str, Any]:
    """The settings of ``config`` by flat name (derived settings left out), JSON-ready."""
    out = {}
    for s in settings(type(config)):
        if s.cli:
            value: Any = config
            for part in s.path:
                value = getattr(value, part)
            out[s.name] = _plain(value)
    return out


def with_default(cls: type, name: str, default: Any, *, help: str | None = None) -> Any:
    """A field declaration like ``cls``'s field ``name`` (same help, aliases) with another
    default (and optionally another help text); for a subclass that only changes defaults,
    as trl's ``SFTConfig`` does with ``TrainingArguments``."""
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    metadata = dict(f.metadata) if help is None else {**f.metadata, "help": help}
    return field(default=default, metadata=metadata)
