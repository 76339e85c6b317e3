"""The known/unknown split of a KB's subjects, saved beside the base model.

The file is ``grounded_pretrain.json`` in the checkpoint folder. The split is decided before
any training and never changes: evaluation and fine-tuning read it back with
:func:`load_pretrain_split` to tell facts the base model saw ("known") from facts it never
saw ("unknown").
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from kg import EntityId, KnowledgeGraph
from kg.io import atomic_write_json
from kg.manifest import check_record, read_json

PRETRAIN_FILE = "grounded_pretrain.json"
PRETRAIN_FORMAT_VERSION = 1

EntityGroup = Literal["known", "unknown"]


def split_subjects(
    graph: KnowledgeGraph, known_fraction: float, seed: int
) -> tuple[list[EntityId], list[EntityId]]:
    """Split the subjects of ``graph``'s facts into ``(known, unknown)``, both sorted.

    The split depends only on the set of subjects, ``known_fraction`` and ``seed`` (not on
    the order facts were loaded in). Each side gets at least one subject when there are two
    or more. Entities that are only ever objects (cities, languages) belong to neither side.

    Raises:
        ValueError: ``known_fraction`` is not strictly between 0 and 1, or the graph has no
            facts.

    Example:
        >>> from kg import Relation, Schema, Triple
        >>> schema = Schema([Relation("capital", "The capital of {subject} is {object}.")])
        >>> g = KnowledgeGraph([Triple("A", "capital", "a"), Triple("B", "capital", "b")], schema)
        >>> known, unknown = split_subjects(g, 0.5, seed=0)
        >>> sorted(known + unknown)
        ['A', 'B']
    """
    if not 0.0 < known_fraction < 1.0:
        raise ValueError(
            f"`known_fraction` must be between 0 and 1 (exclusive), got {known_fraction}"
        )
    subjects = sorted({t.subject for t in graph.triples()})
    if not subjects:
        raise ValueError("the knowledge graph has no facts to split into known and unknown")
    order = list(subjects)
    random.Random(seed).shuffle(order)
    n_known = round(known_fraction * len(order))
    if len(order) >= 2:
        n_known = min(max(n_known, 1), len(order) - 1)
    return sorted(order[:n_known]), sorted(order[n_known:])


@dataclass(frozen=True)
class PretrainSplit:
    """What ``grounded_pretrain.json`` records about a base model trained by ``grounded pretrain``.

    Attributes:
        known_subjects: subjects whose facts were in the pretraining corpus.
        unknown_subjects: subjects whose facts (as subject) the base model never read.
        seed: the seed of the split and of training.
        kb_name, kb_checksum: the knowledge base the model was trained on.
        settings: every :class:`PretrainConfig` setting of the run.
        train: ``steps``, ``final_loss``, ``tokens``, ``seconds`` and a few more figures.
    """

    known_subjects: tuple[EntityId, ...]
    unknown_subjects: tuple[EntityId, ...]
    seed: int
    kb_name: str | None = None
    kb_checksum: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        both = set(self.known_subjects) & set(self.unknown_subjects)
        if both:
            raise ValueError(
                f"`known_subjects` and `unknown_subjects` overlap in {sorted(both)[:5]}; an "
                "entity is either known or unknown to the base model"
            )
        groups: dict[EntityId, EntityGroup] = dict.fromkeys(self.known_subjects, "known")
        groups.update(dict.fromkeys(self.unknown_subjects, "unknown"))
        # A lookup table, not a field: equality and the JSON stay the two lists.
        object.__setattr__(self, "_groups", groups)

    def group(self, subject: EntityId) -> EntityGroup | None:
        """``"known"``, ``"unknown"``, or None for an entity that is no subject of the KB."""
        return self._groups.get(subject)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": PRETRAIN_FORMAT_VERSION,
            "kb": {"name": self.kb_name, "checksum": self.kb_checksum},
            "seed": self.seed,
            "known_subjects": list(self.known_subjects),
            "unknown_subjects": list(self.unknown_subjects),
            "settings": dict(self.settings),
            "train": dict(self.train),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, origin: str = "<dict>") -> PretrainSplit:
        """Inverse of :meth:`to_dict`; ``origin`` names the file in errors.

        Raises:
            ValueError: a required key is missing, or the file is from a newer grounded.
        """
        if not isinstance(data, dict):
            raise ValueError(f"{origin}: expected a JSON object, got {type(data).__name__}")
        check_record(
            data,
            origin,
            version=PRETRAIN_FORMAT_VERSION,
            required=("seed", "known_subjects", "unknown_subjects"),
            known={"format_version", "kb", "seed", "known_subjects", "unknown_subjects"}
            | {"settings", "train"},
            fix="re-run `grounded pretrain`",
        )
        kb = data.get("kb") or {}
        return cls(
            known_subjects=tuple(data["known_subjects"]),
            unknown_subjects=tuple(data["unknown_subjects"]),
            seed=int(data["seed"]),
            kb_name=kb.get("name"),
            kb_checksum=kb.get("checksum"),
            settings=dict(data.get("settings") or {}),
            train=dict(data.get("train") or {}),
        )

    def save(self, folder: str | Path) -> Path:
        """Write ``folder/grounded_pretrain.json`` (atomically)."""
        return atomic_write_json(Path(folder) / PRETRAIN_FILE, self.to_dict())


def load_pretrain_split(base_dir: str | Path) -> PretrainSplit | None:
    """The split saved with a base model by ``grounded pretrain``; None for any other checkpoint.

    Args:
        base_dir: a Hugging Face checkpoint folder.

    Raises:
        FileNotFoundError: ``base_dir`` is not a folder.
        ValueError: the file exists but is malformed or from a newer grounded.

    Example:
        >>> split = load_pretrain_split("runs/countries/base")  # doctest: +SKIP
        >>> split.group("Mongolia")  # doctest: +SKIP
        'known'
    """
    base_dir = Path(base_dir)
    if not base_dir.is_dir():
        raise FileNotFoundError(f"base model folder {base_dir} does not exist")
    path = base_dir / PRETRAIN_FILE
    if not path.is_file():
        return None
    data = read_json(path, fix="re-run `grounded pretrain`")
    return PretrainSplit.from_dict(data, origin=str(path))
