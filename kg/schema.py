"""Relation schema: what each relation means and how it is said in English.

``relations.json`` looks like::

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


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in _FORMATTER.parse(template) if name is not None}


@dataclass
class Relation:
    """One relation of the schema.

    Args:
        name: identifier used in triple files (``capital``).
        template: statement with ``{subject}`` and ``{object}`` placeholders.
        questions: question templates with a ``{subject}`` placeholder; the answer is the object.
        functional: one object per subject (a second object contradicts the first).
            Subjects with several objects are still accepted and listed by the loader.
        closed: for a many-valued relation, the graph lists every object of a subject, so an
            object not listed is contradicted (closed world) instead of unknown.
        subject_type, object_type: optional entity types; negatives for training and checking
            are drawn from objects of the same type.
        plural_template: statement used when a subject has several objects, with ``{objects}``.
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
        if not self.name or not self.name.strip() or "\t" in self.name:
            raise ValueError(
                f"relation `name` must be a non-empty string without tabs; got {self.name!r}"
            )
        missing = {"subject", "object"} - _placeholders(self.template)
        if missing:
            raise ValueError(
                f"relation {self.name!r}: `template` must contain {{subject}} and {{object}}; "
                f"{sorted(missing)} missing in {self.template!r}"
            )
        for q in self.questions:
            if "subject" not in _placeholders(q):
                raise ValueError(
                    f"relation {self.name!r}: each question template needs {{subject}}; got {q!r}"
                )
        if self.plural_template is not None and {"subject", "objects"} - _placeholders(
            self.plural_template
        ):
            raise ValueError(
                f"relation {self.name!r}: `plural_template` needs {{subject}} and {{objects}}; "
                f"got {self.plural_template!r}"
            )
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
        """Build from the ``relations.json`` structure; ``origin`` names the file in errors."""
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
        return cls(rels)

    @classmethod
    def load(cls, path: str | Path) -> Schema:
        """Read ``relations.json``.

        Raises:
            ValueError: malformed JSON or relation, naming the file.
        """
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError as e:
            raise ValueError(
                f"{path}: not UTF-8 ({e.reason} at byte {e.start}); re-save it as UTF-8"
            ) from None
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{e.lineno}: invalid JSON: {e.msg}") from None
        return cls.from_dict(data, origin=str(path))

    def save(self, path: str | Path) -> Path:
        return atomic_write_json(path, self.to_dict())
