"""Entity groups of the evaluation protocol, fixed before training (../shared/DESIGN.md).

A question asks for the object of a (subject, relation) pair. Pairs fall into four groups,
decided once from (kb, pretrain split, seed) and never mixed:

- ``seen``: pairs used in fine-tuning, drawn from known and unknown subjects alike
  (``seen_fraction`` of each (subject class, relation) stratum);
- ``known``: pairs of subjects the base model saw in pretraining, not fine-tuned;
- ``unknown``: pairs of subjects the base model never saw, not fine-tuned (a grounded model
  must answer them from injected evidence);
- ``out_of_kb``: questions whose answer is not in the KB (made-up subjects, and KB subjects
  asked a relation they have no fact for); the right answer is the abstention phrase.

Question phrasings are split too: of each relation with two or more question templates, a
seeded share is held out (``heldout_templates``): training never sees them, and the
evaluator asks half of its questions with them, so a score measures reading, not template
matching. Without a pretrain split (an arbitrary Hugging Face base) every subject is
``unknown``.
:func:`build_groups` is deterministic, so the evaluator rebuilds identical groups, and
:meth:`EntityGroups.save` writes them to ``groups.json`` next to the trained model.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import asdict, dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from kg.io import atomic_write_json
from kg.manifest import check_record, read_json

if TYPE_CHECKING:
    from grounded.kb import KnowledgeBase
    from kg import KnowledgeGraph

GroupName = Literal["seen", "known", "unknown", "out_of_kb"]
GROUPS: tuple[GroupName, ...] = ("seen", "known", "unknown", "out_of_kb")
Pair = tuple[str, str]
GROUPS_FORMAT_VERSION = 1

_SYLLABLES = (
    "ba dor el fen gar hal ir jun kas lor mib nav or pel quen ras sul tav ur vek wen xan yor zil"
).split()


class SubjectSplit(Protocol):
    """What :func:`build_groups` reads of ``grounded.pretrain.PretrainSplit``."""

    known_subjects: list[str]
    unknown_subjects: list[str]


@dataclass
class EntityGroups:
    """The four groups of (subject, relation) pairs, with how they were drawn.

    Attributes:
        seen, known, unknown, out_of_kb: sorted ``(subject, relation)`` pairs.
        known_subjects, unknown_subjects: the subject classes the split gave (unknown holds
            every KB subject without a split).
        made_up_subjects: invented subjects used by ``out_of_kb`` (none resolves in the KB).
        seed, seen_fraction: the draw's settings.
        kb_checksum: the checksum of the KB the groups were drawn from.
        split_source: ``pretrain_split`` or ``none`` (every subject unknown).
        heldout_templates: relation → indices of its question templates that training never
            uses (empty for a relation with one template, and in files from before the split).
    """

    seen: list[Pair]
    known: list[Pair]
    unknown: list[Pair]
    out_of_kb: list[Pair]
    known_subjects: list[str] = field(default_factory=list)
    unknown_subjects: list[str] = field(default_factory=list)
    made_up_subjects: list[str] = field(default_factory=list)
    seed: int = 0
    seen_fraction: float = 0.5
    kb_checksum: str = ""
    split_source: str = "none"
    heldout_templates: dict[str, list[int]] = field(default_factory=dict)

    def templates(self, relation: str, n_templates: int, phrasing: str = "train") -> list[int]:
        """Indices of ``relation``'s question templates of one ``phrasing``: ``train`` (what
        training may use) or ``heldout`` (evaluation only).

        Raises:
            ValueError: ``phrasing`` is neither.
        """
        held = set(self.heldout_templates.get(relation, ()))
        if phrasing == "heldout":
            return sorted(i for i in held if i < n_templates)
        if phrasing != "train":
            raise ValueError(f"`phrasing` must be 'train' or 'heldout', got {phrasing!r}")
        return [i for i in range(n_templates) if i not in held]

    def pairs(self, group: GroupName) -> list[Pair]:
        """The pairs of ``group``.

        Raises:
            ValueError: ``group`` is not one of :data:`GROUPS`.
        """
        if group not in GROUPS:
            raise ValueError(f"`group` must be one of {GROUPS}, got {group!r}")
        return list(getattr(self, group))

    def group_of(self, subject: str, relation: str) -> GroupName | None:
        """The group holding ``(subject, relation)``, or None."""
        return self._lookup.get((subject, relation))

    @cached_property
    def _lookup(self) -> dict[Pair, GroupName]:
        return {tuple(p): g for g in GROUPS for p in getattr(self, g)}

    def counts(self) -> dict[str, int]:
        return {g: len(getattr(self, g)) for g in GROUPS}

    def to_dict(self) -> dict:
        out = asdict(self)
        for g in GROUPS:
            out[g] = [list(p) for p in getattr(self, g)]
        out["format_version"] = GROUPS_FORMAT_VERSION
        out["counts"] = self.counts()
        return out

    @classmethod
    def from_dict(cls, data: dict, *, origin: str = "<dict>") -> EntityGroups:
        """Inverse of :meth:`to_dict`.

        Raises:
            ValueError: a group is missing or the file is from a newer grounded.
        """
        known = {f.name for f in fields(cls)}
        check_record(
            data,
            origin,
            version=GROUPS_FORMAT_VERSION,
            required=GROUPS,
            known=known | {"format_version", "counts"},
            fix="rebuild the groups file (train the model again)",
        )
        values = {k: v for k, v in data.items() if k in known}
        for g in GROUPS:
            values[g] = [tuple(p) for p in data[g]]
        return cls(**values)

    def save(self, path: str | Path) -> Path:
        """Write ``groups.json`` (canonical JSON, atomically)."""
        return atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> EntityGroups:
        path = Path(path)
        data = read_json(path, fix="rebuild the groups file (train the model again)")
        return cls.from_dict(data, origin=str(path))


def answerable_pairs(graph: KnowledgeGraph) -> list[Pair]:
    """Every (subject, relation) pair with an object in the graph and a question template."""
    asked = {r.name for r in graph.schema if r.questions}
    return sorted({(t.subject, t.relation) for t in graph.triples() if t.relation in asked})


def build_groups(
    kb: KnowledgeBase,
    split: SubjectSplit | None = None,
    *,
    seed: int = 0,
    seen_fraction: float = 0.5,
    out_of_kb: int = 100,
    heldout_fraction: float = 1 / 3,
) -> EntityGroups:
    """Draw the entity groups of ``kb`` deterministically from ``(kb, split, seed)``.

    Args:
        kb: the knowledge base.
        split: the base model's pretrain split (``known_subjects``, ``unknown_subjects``);
            None treats every subject as unknown. Subjects it does not list are unknown.
        seed: seed of the draw.
        seen_fraction: share of each (subject class, relation) stratum used in fine-tuning.
        out_of_kb: number of out-of-KB questions: half made-up subjects, half KB subjects
            with a relation they have no fact for (made-up ones fill any shortfall).
        heldout_fraction: share of each relation's question templates held out of training
            (rounded, at least one where a relation has two or more, never all).

    Raises:
        ValueError: ``seen_fraction`` outside (0, 1], ``out_of_kb`` < 0, or the KB has no
            relation with question templates.

    Example:
        >>> groups = build_groups(kb, None, seed=0)  # doctest: +SKIP
        >>> groups.counts()  # doctest: +SKIP
        {'seen': 11, 'known': 0, 'unknown': 9, 'out_of_kb': 100}
    """
    if not 0.0 < seen_fraction <= 1.0:
        raise ValueError(f"`seen_fraction` must be in (0, 1], got {seen_fraction}")
    if out_of_kb < 0:
        raise ValueError(f"`out_of_kb` must be >= 0, got {out_of_kb}")
    if not 0.0 <= heldout_fraction < 1.0:
        raise ValueError(f"`heldout_fraction` must be in [0, 1), got {heldout_fraction}")
    graph = kb.graph
    pairs = answerable_pairs(graph)
    if not pairs:
        raise ValueError(
            f"knowledge base {kb.name!r} has no fact whose relation has a question template; "
            'add "questions" to relations.json'
        )
    known_set = set(split.known_subjects) if split is not None else set()
    rng = random.Random(f"grounded-groups-{seed}")
    strata: dict[tuple[str, str], list[Pair]] = defaultdict(list)
    for s, r in pairs:
        strata[("known" if s in known_set else "unknown", r)].append((s, r))
    seen: list[Pair] = []
    for key in sorted(strata):
        items = strata[key]
        rng.shuffle(items)
        seen.extend(items[: round(seen_fraction * len(items))])
    seen_set = set(seen)
    rest = [p for p in pairs if p not in seen_set]
    subjects = sorted({s for s, _ in pairs})
    made_up, oob = _out_of_kb_pairs(graph, pairs, out_of_kb, rng)
    return EntityGroups(
        seen=sorted(seen),
        known=[p for p in rest if p[0] in known_set],
        unknown=[p for p in rest if p[0] not in known_set],
        out_of_kb=oob,
        known_subjects=sorted(s for s in subjects if s in known_set),
        unknown_subjects=sorted(s for s in subjects if s not in known_set),
        made_up_subjects=made_up,
        seed=seed,
        seen_fraction=seen_fraction,
        kb_checksum=kb.checksum,
        split_source="pretrain_split" if split is not None else "none",
        heldout_templates=heldout_templates(graph, heldout_fraction, seed=seed),
    )


def heldout_templates(
    graph: KnowledgeGraph, fraction: float = 1 / 3, *, seed: int = 0
) -> dict[str, list[int]]:
    """Per relation with two or more question templates, the seeded indices held out.

    Example:
        >>> from kg import KnowledgeGraph, Relation, Schema
        >>> rel = Relation("capital", "The capital of {subject} is {object}.",
        ...     ["What is the capital of {subject}?", "Name the capital of {subject}.",
        ...      "Which city is the capital of {subject}?"])
        >>> heldout_templates(KnowledgeGraph([], Schema([rel])), seed=0)
        {'capital': [1]}
    """
    out = {}
    for rel in graph.schema:
        n = len(rel.questions)
        if n < 2 or fraction <= 0:
            continue
        k = min(n - 1, max(1, round(fraction * n)))
        rng = random.Random(f"grounded-templates-{seed}-{rel.name}")
        out[rel.name] = sorted(rng.sample(range(n), k))
    return out


def _out_of_kb_pairs(
    graph: KnowledgeGraph, pairs: list[Pair], n: int, rng: random.Random
) -> tuple[list[str], list[Pair]]:
    """Made-up subjects and KB subjects with a type-compatible relation they lack."""
    schema = graph.schema
    asked = sorted(r.name for r in schema if r.questions)
    have = set(pairs)
    relations_of: dict[str, set[str]] = defaultdict(set)
    for s, r in pairs:
        relations_of[s].add(r)
    missing = []
    for s in sorted(relations_of):
        types = {schema[r].subject_type for r in relations_of[s]}
        missing.extend(
            (s, r) for r in asked if (s, r) not in have and schema[r].subject_type in types
        )
    rng.shuffle(missing)
    missing = sorted(missing[: n // 2])
    made_up: list[str] = []
    tries = 0
    while len(made_up) < n - len(missing) and tries < 100 * (n + 1):
        tries += 1
        name = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))).capitalize()
        if name not in made_up and not graph.resolve(name):
            made_up.append(name)
    return sorted(made_up), sorted(missing + [(s, rng.choice(asked)) for s in made_up])
