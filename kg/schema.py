"""Relation schema: what each relation means and how it is said in English.

A schema file is JSON, YAML or a table (TSV/CSV, one relation a row; see
:meth:`Schema.load`). ``relations.json`` looks like::

    {"relations": [
      {"name": "capital", "functional": true,
       "template": "The capital of {subject} is {object}.",
       "questions": ["What is the capital of {subject}?"],
       "subject_type": "country", "object_type": "city"}
    ]}
"""

from __future__ import annotations

import json
import string
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from kg.io import atomic_write_json
from kg.text import join_items

_FORMATTER = string.Formatter()

SCHEMA_FORMATS = ".json, .yaml, .yml, .tsv or .csv"
TABLE_REQUIRED = ("relation", "template")
TABLE_OPTIONAL = (
    "functional",
    "questions",
    "closed",
    "subject_type",
    "object_type",
    "plural_template",
    "description",
)
_TRUE = ("true", "yes", "1")
_FALSE = ("false", "no", "0")

STATEMENT_SLOTS = ("subject", "object")
QUESTION_SLOTS = ("subject",)
PLURAL_SLOTS = ("subject", "objects")


def _check_template(relation: str, what: str, template: object, slots: tuple[str, ...]) -> None:
    """Raise unless ``template`` is a string using every one of ``slots`` and nothing else.

    Positional (``{}``, ``{0}``), unknown (``{year}``), attribute (``{subject.name}``) and
    formatted (``{subject!r}``, ``{object:>5}``) placeholders are refused here, at load,
    instead of failing when the template is first filled, long after a model has loaded.
    """
    allowed = " and ".join(f"{{{s}}}" for s in slots)
    if not isinstance(template, str):
        raise ValueError(
            f"relation {relation!r}: `{what}` must be a string with {allowed}; "
            f"got {type(template).__name__} {template!r}"
        )
    try:
        parts = list(_FORMATTER.parse(template))
    except ValueError as e:
        raise ValueError(
            f"relation {relation!r}: `{what}` {template!r} is not a valid template ({e}); "
            "write {{ and }} for a literal brace"
        ) from None
    used, unknown = set(), []
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in slots or spec or conversion:
            unknown.append(
                "{"
                + name
                + (f"!{conversion}" if conversion else "")
                + (f":{spec}" if spec else "")
                + "}"
            )
        used.add(name)
    if unknown:
        raise ValueError(
            f"relation {relation!r}: `{what}` {template!r} uses unknown placeholder(s) "
            f"{', '.join(unknown)}; allowed: {allowed} (write {{{{ and }}}} for a literal brace)"
        )
    missing = [s for s in slots if s not in used]
    if missing:
        raise ValueError(
            f"relation {relation!r}: `{what}` must contain {allowed}; it needs "
            f"{' and '.join('{' + m + '}' for m in missing)} (missing in {template!r})"
        )


def _table_bool(column: str, text: str) -> bool:
    low = text.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError(f"column {column!r} must be true or false; got {text!r}")


def _check_type(relation: str, name: str, value: object, kind: type | tuple, text: str) -> None:
    # bool is an int, and "no" is truthy: check the exact type, never coerce.
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise ValueError(
            f"relation {relation!r}: `{name}` must be {text}; got {type(value).__name__} {value!r}"
        )


@dataclass
class Relation:
    """One relation of the schema.

    Args:
        name: identifier used in triple files (``capital``).
        template: statement with ``{subject}`` and ``{object}`` placeholders (no others).
        questions: question templates with a ``{subject}`` placeholder; the answer is the
            object. A relation without one is left out of training and evaluation questions.
        functional: one object per subject (a second object contradicts the first).
            Subjects with several objects are still accepted and listed by the loader.
        closed: for a many-valued relation, the graph lists every object of a subject, so an
            object not listed is contradicted (closed world) instead of unknown.
        subject_type, object_type: optional entity types; negatives for training and checking
            are drawn from objects of the same type, and a triple whose entities have another
            type (``--entities``) is reported at build.
        plural_template: statement used when a subject has several objects, with ``{subject}``
            and ``{objects}``.

    Raises:
        ValueError: a field has the wrong type (``functional`` must be true or false, not
            ``"no"``), or a template uses a placeholder other than its own.
    """

    name: str
    template: str
    questions: list[str] = field(default_factory=list)
    functional: bool = True
    closed: bool = False
    subject_type: str | None = None
    object_type: str | None = None
    plural_template: str | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip() or "\t" in self.name:
            raise ValueError(
                f"relation `name` must be a non-empty string without tabs; got "
                f"{type(self.name).__name__} {self.name!r}"
            )
        self.name = self.name.strip()
        _check_template(self.name, "template", self.template, STATEMENT_SLOTS)
        _check_type(self.name, "questions", self.questions, list, "a list of question templates")
        for i, q in enumerate(self.questions):
            _check_template(self.name, f"questions[{i}]", q, QUESTION_SLOTS)
        for flag in ("functional", "closed"):
            _check_type(self.name, flag, getattr(self, flag), bool, "true or false")
        for key in ("subject_type", "object_type"):
            value = getattr(self, key)
            if value is not None:
                _check_type(self.name, key, value, str, "a type name (a string) or null")
                setattr(self, key, value.strip() or None)
        if self.plural_template is not None:
            _check_template(self.name, "plural_template", self.plural_template, PLURAL_SLOTS)
        _check_type(self.name, "description", self.description, str, "a string")
        if self.functional and self.closed:
            warnings.warn(
                f"relation {self.name!r}: `closed` only matters for many-valued relations "
                "(functional=false); ignoring it",
                stacklevel=2,
            )

    def statement(self, subject: str, obj: str) -> str:
        """The fact as an English sentence."""
        return self.template.format(subject=subject, object=obj)

    def statement_many(self, subject: str, objects: list[str]) -> str:
        """All objects of a subject in one sentence (``A, B and C``)."""
        if len(objects) == 1 or self.plural_template is None:
            return " ".join(self.statement(subject, o) for o in objects)
        return self.plural_template.format(subject=subject, objects=join_items(objects))

    def question(self, subject: str, i: int = 0) -> str:
        """The ``i``-th question template filled with ``subject``.

        Raises:
            ValueError: the relation has no question template.
        """
        if not self.questions:
            raise ValueError(f"relation {self.name!r} has no question templates in relations.json")
        return self.questions[i % len(self.questions)].format(subject=subject)


class Schema:
    """The set of relations of a knowledge base, by name."""

    def __init__(self, relations: Iterable[Relation]) -> None:
        self._relations: dict[str, Relation] = {}
        for r in relations:
            if r.name in self._relations:
                raise ValueError(f"relation {r.name!r} is defined twice in the schema")
            self._relations[r.name] = r

    def __contains__(self, name: object) -> bool:
        return name in self._relations

    def __getitem__(self, name: str) -> Relation:
        try:
            return self._relations[name]
        except KeyError:
            raise KeyError(
                f"relation {name!r} is not in the schema; known: {sorted(self._relations)}"
            ) from None

    def __iter__(self) -> Iterator[Relation]:
        return iter(self._relations.values())

    def __len__(self) -> int:
        return len(self._relations)

    @property
    def names(self) -> list[str]:
        return list(self._relations)

    def to_dict(self) -> dict:
        return {"relations": [asdict(r) for r in self._relations.values()]}

    @classmethod
    def from_dict(cls, data: dict, *, origin: str = "<dict>") -> Schema:
        """Build from the ``relations.json`` structure; ``origin`` names the file in errors.

        Raises:
            ValueError: not an object with a ``relations`` list, or a bad relation (its index
                and the reason: ``"functional": "no"`` is refused, not read as true).
        """
        if not isinstance(data, dict) or not isinstance(data.get("relations"), list):
            raise ValueError(
                f'{origin}: expected an object with a "relations" list, got {type(data).__name__}'
            )
        known = {f.name for f in fields(Relation)}
        rels = []
        for i, item in enumerate(data["relations"]):
            if not isinstance(item, dict) or "name" not in item or "template" not in item:
                raise ValueError(
                    f'{origin}: relations[{i}] must be an object with "name" and "template"; '
                    f"got {item!r}"
                )
            unknown = set(item) - known
            if unknown:
                warnings.warn(
                    f"{origin}: relations[{i}] ({item['name']!r}) has unknown keys "
                    f"{sorted(unknown)}; ignored (written by a newer grounded?)",
                    stacklevel=2,
                )
            try:
                rels.append(Relation(**{k: v for k, v in item.items() if k in known}))
            except (TypeError, ValueError) as e:
                raise ValueError(f"{origin}: relations[{i}]: {e}") from None
        try:
            return cls(rels)
        except ValueError as e:
            raise ValueError(f"{origin}: {e}") from None

    @classmethod
    def load(cls, path: str | Path) -> Schema:
        """Read a relation schema: JSON, YAML, or a TSV/CSV table (by the file's suffix).

        - ``.json``: ``{"relations": [{"name": ..., "template": ..., ...}]}``;
        - ``.yaml`` / ``.yml``: the same structure in YAML;
        - ``.tsv`` / ``.csv``: one relation a row; columns ``relation``, ``template``,
          ``functional`` (true/false, default true), ``questions`` (separated by ``|``),
          optional ``closed``, ``subject_type``, ``object_type``, ``plural_template``,
          ``description``.

        JSON and YAML may also hold the list of relations alone.

        Raises:
            FileNotFoundError, IsADirectoryError: ``path`` is not a file.
            ValueError: unknown format, malformed file or relation, naming the file (and the
                line where the format has lines).

        Example:
            >>> import tempfile, pathlib
            >>> p = pathlib.Path(tempfile.mkdtemp()) / "relations.tsv"
            >>> _ = p.write_text("relation\\tfunctional\\ttemplate\\tquestions\\n"
            ...     "symbol\\ttrue\\tThe symbol of {subject} is {object}.\\t"
            ...     "What is the symbol of {subject}?|Which symbol does {subject} have?\\n")
            >>> Schema.load(p)["symbol"].questions
            ['What is the symbol of {subject}?', 'Which symbol does {subject} have?']
        """
        from kg.tables import CSV_SUFFIXES, TSV_SUFFIXES, input_file

        path = input_file(path, "relation schema", f"one of {SCHEMA_FORMATS}")
        suffix = path.suffix.lower()
        if suffix in (*TSV_SUFFIXES, *CSV_SUFFIXES):
            return cls._load_table(path)
        if suffix not in (".json", ".yaml", ".yml"):
            raise ValueError(
                f"{path}: unknown relation schema format {suffix!r}; use {SCHEMA_FORMATS}"
            )
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as e:
            raise ValueError(
                f"{path}: not UTF-8 ({e.reason} at byte {e.start}); re-save it as UTF-8"
            ) from None
        if suffix == ".json":
            try:
                data = json.loads(text)
            except json.JSONDecodeError as e:
                raise ValueError(
                    f"{path}:{e.lineno}: invalid JSON: {e.msg} (for a table of relations use "
                    ".tsv or .csv; for YAML, .yaml)"
                ) from None
        else:
            import yaml

            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError as e:
                mark = getattr(e, "problem_mark", None)
                where = f":{mark.line + 1}" if mark is not None else ""
                raise ValueError(f"{path}{where}: invalid YAML: {e}") from None
        if isinstance(data, list):
            data = {"relations": data}
        return cls.from_dict(data, origin=str(path))

    @classmethod
    def _load_table(cls, path: Path) -> Schema:
        from kg.tables import SourceFileError, table_rows

        errors: list[tuple[str, int, str]] = []
        relations: list[Relation] = []
        lines: dict[str, int] = {}
        for n, row in table_rows(path, errors, TABLE_REQUIRED, TABLE_OPTIONAL):
            values: dict = {"name": row["relation"], "template": row["template"]}
            try:
                for flag in ("functional", "closed"):
                    if row.get(flag):
                        values[flag] = _table_bool(flag, row[flag])
            except ValueError as e:
                errors.append((str(path), n, str(e)))
                continue
            values["questions"] = [q.strip() for q in row.get("questions", "").split("|")]
            values["questions"] = [q for q in values["questions"] if q]
            for key in ("subject_type", "object_type", "plural_template", "description"):
                if row.get(key):
                    values[key] = row[key]
            if values["name"] in lines:
                errors.append(
                    (
                        str(path),
                        n,
                        f"relation {values['name']!r} is defined twice (first on line "
                        f"{lines[values['name']]})",
                    )
                )
                continue
            try:
                relations.append(Relation(**values))
            except ValueError as e:
                errors.append((str(path), n, str(e)))
                continue
            lines[values["name"]] = n
        if errors:
            raise SourceFileError(
                errors,
                hint=f"a relation table has the columns {', '.join(TABLE_REQUIRED)} and may "
                f"add {', '.join(TABLE_OPTIONAL)}; separate questions with |",
            )
        return cls(relations)

    def save(self, path: str | Path) -> Path:
        return atomic_write_json(path, self.to_dict())
