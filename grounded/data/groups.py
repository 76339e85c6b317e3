"""Entity groups of the evaluation protocol, fixed before training (../shared/DESIGN.md).

A question asks for the object of a (subject, relation) pair. Pairs fall into five groups,
decided once, before any training, and never mixed:

- ``seen``: pairs used in fine-tuning, drawn from known and unknown pairs alike
  (``seen_fraction`` of each (class, relation) stratum);
- ``known``: pairs the base model knows, not fine-tuned. For a base from ``grounded
  pretrain``: pairs of the subjects it was pretrained on (its pretrain split). For any other
  (pretrained) base: pairs it answers correctly closed-book, probed before training with the
  evaluator's own scorer and prompt format (:class:`ClosedBookProbe`, recorded in
  ``groups.json``);
- ``unknown``: KB-covered pairs the base does not know (for a pretrained base: probed and
  answered wrongly), not fine-tuned: a grounded model must answer them from its evidence;
- ``counterfactual`` (KAFT, Li et al. 2022): real pairs with one object whose evidence, at
  evaluation, states another object of the right type (:attr:`EntityGroups.counterfactual_facts`,
  drawn from :meth:`kg.KnowledgeGraph.object_pool`); the right answer follows the evidence;
- ``out_of_kb``: questions whose answer is not in the KB (made-up subjects, and KB subjects
  asked a relation they have no fact for); the right answer is the abstention phrase.

With a closed-book probe, seen pairs are drawn first (``seen_fraction`` of each relation),
then the counterfactual group, and the probe runs on at most ``max_pairs`` of the remaining
pairs (a seeded sample): pairs left unprobed are in no evaluation group (``unprobed`` in the
file), so known and unknown hold decided pairs only.

Question phrasings are split too: of each relation with two or more question templates, a
seeded share is held out (``heldout_templates``): training never sees them, and the
evaluator asks half of its questions with them, so a score measures reading, not template
matching. Without a pretrain split or a probe every subject is ``unknown``.
:func:`build_groups` is deterministic, so the evaluator rebuilds identical groups, and
:meth:`EntityGroups.save` writes them to ``groups.json`` next to the trained model.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from kg.io import atomic_write_json
from kg.manifest import check_record, read_json

if TYPE_CHECKING:
    from grounded.kb import KnowledgeBase
    from kg import KnowledgeGraph

GroupName = Literal["seen", "known", "unknown", "counterfactual", "out_of_kb"]
GROUPS: tuple[GroupName, ...] = ("seen", "known", "unknown", "counterfactual", "out_of_kb")
_REQUIRED: tuple[str, ...] = ("seen", "known", "unknown", "out_of_kb")  # files before KAFT
Pair = tuple[str, str]
GROUPS_FORMAT_VERSION = 1

# Made-up names of training examples (and the pretraining corpus's abstention documents):
# syllables disjoint from the evaluation's (_SYLLABLES), so no out-of-KB name of the
# evaluation is ever seen in training.
TRAINING_SYLLABLES = (
    "ab cor dex fim gon hul iks jor kel lum mox nir opa pim qua rul sen tok umb vor wix yal zeb"
).split()
_SYLLABLES = (
    "ba dor el fen gar hal ir jun kas lor mib nav or pel quen ras sul tav ur vek wen xan yor zil"
).split()


@dataclass
class ClosedBookProbe:
    """What a pretrained base answered closed-book, before any training.

    Attributes:
        known: the probed pairs it answered correctly (sorted).
        answers: one row per probed pair: ``[subject, relation, question, answer, outcome]``.
        n_pairs: pairs that could have been probed (the KB-covered pairs left after the
            seen and counterfactual draws).
        settings: how it was probed (``max_pairs``, ``seed``, ``prompt_format``,
            ``max_new_tokens``, ``seconds``, ...).
    """

    known: list[Pair]
    answers: list[list[str]]
    n_pairs: int
    settings: dict = field(default_factory=dict)

    @property
    def probed(self) -> list[Pair]:
        return [(a[0], a[1]) for a in self.answers]

    def to_dict(self) -> dict:
        return {
            "known": [list(p) for p in self.known],
            "answers": [list(a) for a in self.answers],
            "n_pairs": self.n_pairs,
            "n_probed": len(self.answers),
            "n_known": len(self.known),
            "settings": dict(self.settings),
        }


Prober = Callable[[list[Pair]], ClosedBookProbe]
"""Probes the given pairs closed-book (:func:`grounded.data.probe.closed_book_prober`)."""


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
        split_source: ``pretrain_split``, ``closed_book_probe`` or ``none`` (every subject
            unknown).
        counterfactual: the counterfactual group's pairs; ``counterfactual_facts``: for each,
            ``[subject, relation, object]`` with the object its evidence states instead.
        probe: the closed-book probe (:meth:`ClosedBookProbe.to_dict`; empty without one).
        unprobed: KB-covered pairs outside seen and counterfactual that the probe's cap left
            undecided (in no group).
        heldout_templates: relation → indices of its question templates that training never
            uses (empty for a relation with one template, and in files from before the split).
    """

    seen: list[Pair]
    known: list[Pair]
    unknown: list[Pair]
    out_of_kb: list[Pair]
    counterfactual: list[Pair] = field(default_factory=list)
    counterfactual_facts: list[list[str]] = field(default_factory=list)
    probe: dict = field(default_factory=dict)
    unprobed: int = 0
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

    def counterfactual_objects(self) -> dict[Pair, str]:
        """(subject, relation) → the object the counterfactual evidence states."""
        return {(s, r): o for s, r, o in self.counterfactual_facts}

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
            required=_REQUIRED,
            known=known | {"format_version", "counts"},
            fix="rebuild the groups file (train the model again)",
        )
        values = {k: v for k, v in data.items() if k in known}
        for g in GROUPS:
            values[g] = [tuple(p) for p in data.get(g, ())]  # older files: no counterfactual
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
    counterfactual: int = 0,
    prober: Prober | None = None,
) -> EntityGroups:
    """Draw the entity groups of ``kb`` deterministically from ``(kb, split, seed)`` (and
    the base's closed-book answers, with ``prober``).

    Args:
        kb: the knowledge base.
        split: the base model's pretrain split (``known_subjects``, ``unknown_subjects``);
            subjects it does not list are unknown.
        seed: seed of the draw.
        seen_fraction: share of each (subject class, relation) stratum used in fine-tuning.
        out_of_kb: number of out-of-KB questions: half made-up subjects, half KB subjects
            with a relation they have no fact for (made-up ones fill any shortfall).
        heldout_fraction: share of each relation's question templates held out of training
            (rounded, at least one where a relation has two or more, never all).
        counterfactual: pairs in the counterfactual group (drawn from the pairs not seen,
            with one object and another object of the right type to state instead; at most a
            third of them (one at least), so known and unknown keep pairs).
        prober: for a base without a pretrain split: probes pairs closed-book; known are the
            pairs it answers correctly, unknown the others (see the module). Ignored with
            ``split``. Neither: every subject is unknown.

    Raises:
        ValueError: ``seen_fraction`` outside (0, 1], ``out_of_kb`` or ``counterfactual``
            < 0, or the KB has no relation with question templates.

    Example:
        >>> groups = build_groups(kb, None, seed=0)  # doctest: +SKIP
        >>> groups.counts()  # doctest: +SKIP
        {'seen': 11, 'known': 0, 'unknown': 9, 'counterfactual': 0, 'out_of_kb': 100}
    """
    if not 0.0 < seen_fraction <= 1.0:
        raise ValueError(f"`seen_fraction` must be in (0, 1], got {seen_fraction}")
    if out_of_kb < 0 or counterfactual < 0:
        raise ValueError(
            f"`out_of_kb` and `counterfactual` must be >= 0, got {out_of_kb} and {counterfactual}"
        )
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
    # Own streams: the groups of earlier versions (no counterfactual, no probe) stay as drawn.
    cf_facts = _counterfactual_facts(graph, rest, counterfactual, seed)
    cf_pairs = {(s, r) for s, r, _ in cf_facts}
    rest = [p for p in rest if p not in cf_pairs]
    probe: ClosedBookProbe | None = None
    unprobed = 0
    if split is None and prober is not None:
        probe = prober(rest)
        decided = set(probe.probed)
        unprobed = sum(p not in decided for p in rest)
        known_pairs = set(probe.known)
        known = [p for p in rest if p in known_pairs]
        unknown = [p for p in rest if p in decided and p not in known_pairs]
        known_subjects = sorted({s for s, _ in known})
        unknown_subjects = sorted(s for s in subjects if s not in set(known_subjects))
        source = "closed_book_probe"
    else:
        known = [p for p in rest if p[0] in known_set]
        unknown = [p for p in rest if p[0] not in known_set]
        known_subjects = sorted(s for s in subjects if s in known_set)
        unknown_subjects = sorted(s for s in subjects if s not in known_set)
        source = "pretrain_split" if split is not None else "none"
    return EntityGroups(
        seen=sorted(seen),
        known=known,
        unknown=unknown,
        out_of_kb=oob,
        counterfactual=sorted(cf_pairs),
        counterfactual_facts=cf_facts,
        probe=probe.to_dict() if probe is not None else {},
        unprobed=unprobed,
        known_subjects=known_subjects,
        unknown_subjects=unknown_subjects,
        made_up_subjects=made_up,
        seed=seed,
        seen_fraction=seen_fraction,
        kb_checksum=kb.checksum,
        split_source=source,
        heldout_templates=heldout_templates(graph, heldout_fraction, seed=seed),
    )


def _counterfactual_facts(
    graph: KnowledgeGraph, rest: list[Pair], n: int, seed: int
) -> list[list[str]]:
    """Up to ``n`` (at most a third of ``rest``, one at least) ``[subject, relation,
    substitute]``: pairs
    with one object, each with another object of the relation's pool, drawn with the seed."""
    if n <= 0:
        return []
    rng = random.Random(f"grounded-groups-counterfactual-{seed}")
    candidates = [p for p in rest if len(graph.objects(*p)) == 1]
    rng.shuffle(candidates)
    out: list[list[str]] = []
    for s, r in candidates:
        if len(out) >= min(n, max(1, len(rest) // 3)):
            break
        true = graph.objects(s, r)[0]
        pool = [o for o in graph.object_pool(r) if o != true and o != s]
        if pool:
            out.append([s, r, rng.choice(pool)])
    return sorted(out)


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


def _missing_relations(graph: KnowledgeGraph, pairs: list[Pair], asked: list[str]) -> list[Pair]:
    """KB subjects with a type-compatible asked relation they have no fact for, in order."""
    schema = graph.schema
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
    return missing


def _out_of_kb_pairs(
    graph: KnowledgeGraph, pairs: list[Pair], n: int, rng: random.Random
) -> tuple[list[str], list[Pair]]:
    """Made-up subjects and KB subjects with a type-compatible relation they lack."""
    asked = sorted(r.name for r in graph.schema if r.questions)
    missing = _missing_relations(graph, pairs, asked)
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


def training_out_of_kb_pairs(
    graph: KnowledgeGraph, groups: EntityGroups, n: int, *, seed: int = 0
) -> list[Pair]:
    """``n`` out-of-KB pairs for training abstention, none of them the evaluation's: half
    made-up subjects (named from :data:`TRAINING_SYLLABLES`), half KB subjects asked a
    type-compatible relation they have no fact for, outside ``groups.out_of_kb``.

    Example:
        >>> pairs = training_out_of_kb_pairs(kb.graph, groups, 10)  # doctest: +SKIP
    """
    if n <= 0:
        return []
    rng = random.Random(f"grounded-train-out-of-kb-{seed}")
    pairs = answerable_pairs(graph)
    asked = sorted(r.name for r in graph.schema if r.questions)
    evaluated = set(groups.out_of_kb)
    missing = [p for p in _missing_relations(graph, pairs, asked) if p not in evaluated]
    rng.shuffle(missing)
    out = missing[: n // 2]
    taken = set(groups.made_up_subjects)
    while len(out) < n:
        name = "".join(rng.choice(TRAINING_SYLLABLES) for _ in range(rng.randint(2, 3)))
        name = name.capitalize()
        if name in taken or graph.resolve(name):
            continue
        taken.add(name)
        out.append((name, rng.choice(asked)))
    return out
