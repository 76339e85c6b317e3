"""Fact-checking claims from any knowledge base, as ``datasets.Dataset`` splits by subject.

For each sampled (subject, relation) pair of the graph:

- **supported**: a true object (or several, for list forms), said in one of the surface forms
  of :mod:`grounded.factcheck.forms`;
- **refuted**: a wrong object of the relation's type, for functional and closed relations;
  for open many-valued relations a wrong object is **not enough info** (the graph lists some
  languages of a country, which does not rule out another);
- **not enough info**: claims about pairs *held out* of the knowledge base (their facts and
  the passage sentences stating them are removed, :func:`~grounded.factcheck.heldout.
  hide_facts`), so retrieval returns what it would for a fact the KB lacks: the subject's
  other facts (same subject, other relation) and the relation's facts about other subjects
  (same relation, other subject); and claims about pairs the graph never had (a country
  without land borders).

Training claims may also come as **counterfactual twins** (``counterfactual_rate``): a
supported or refuted claim again, with the facts of its (subject, relation) taken out of its
evidence, labelled not enough info. Such minimal pairs teach the checker to look for the
subject's own fact rather than a plausible one.

Labels are not assigned by hand: each claim is checked against the held-out graph with
:func:`kg.check_claim` (a twin against that graph without its pair), so a label always means
what the graph says. Evidence is the real
hybrid retriever's top-k over the held-out knowledge base. Subjects are split before anything
is sampled: no subject has claims in both ``train`` and ``test``.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from grounded.factcheck.checker import DEFAULT_EVIDENCE_K, alias_notes
from grounded.factcheck.forms import FORMS, LIST_FORMS, Surface
from grounded.factcheck.heldout import hide_facts
from grounded.factcheck.labels import join_evidence
from grounded.types import LABELS, Label
from kg import EntityId, KnowledgeGraph, Passage
from kg.check import judge_objects
from kg.claims import ClaimReader

if TYPE_CHECKING:
    from datasets import DatasetDict

    from grounded.kb import KnowledgeBase

DEFAULT_FORMS = ("statement", "clause", "question_answer", "short_answer", "plural")

Pair = tuple[EntityId, str]


@dataclass
class ClaimDataConfig:
    """Settings of :func:`build_claim_data`."""

    test_fraction: float = field(
        default=0.2, metadata={"help": "Fraction of subjects whose claims form the test split."}
    )
    hide_fraction: float = field(
        default=0.35,
        metadata={"help": "Fraction of sampled (subject, relation) pairs held out of the KB."},
    )
    forms: list[str] = field(
        default_factory=lambda: list(DEFAULT_FORMS),
        metadata={"help": f"Surface forms of claims, from {sorted(FORMS)}."},
    )
    max_train_claims: int = field(
        default=3000, metadata={"help": "Training claims at most (pairs are sampled)."}
    )
    max_test_claims: int = field(default=1000, metadata={"help": "Test claims at most."})
    evidence_k: int = field(
        default=DEFAULT_EVIDENCE_K,
        metadata={"help": "Retrieved evidence items joined per claim (what the checker reads)."},
    )
    alias_notes: bool = field(
        default=True,
        metadata={
            "help": "Start the evidence with a note for each other name the claim uses "
            '("Republic of Burundi is another name for Burundi."), from the KB\'s aliases: '
            "the retrieved facts use canonical names only."
        },
    )
    alias_rate: float = field(
        default=0.25,
        metadata={"help": "Probability of naming a subject or object by an unambiguous alias."},
    )
    counterfactual_rate: float = field(
        default=0.5,
        metadata={
            "help": "Fraction of supported and refuted training claims that also appear as a "
            "not-enough-info twin: the same claim, with the facts of its (subject, relation) "
            "taken out of the evidence (and the sentences naming their objects out of "
            "passages), backfilled from further down the ranking. Minimal pairs that teach "
            "the checker to look for the subject's fact, not a plausible one. Training split "
            "only, on top of `max_train_claims` (0.5 adds about a third more training claims; "
            "on the countries KB, with alias notes, held-out accuracy went from 0.79 without "
            "either to 0.85; 1.0 did no better at a quarter more training time)."
        },
    )
    gaps: bool = field(
        default=True,
        metadata={
            "help": "Add not-enough-info claims about pairs the graph lacks (a subject of the "
            "relation's type without the relation)."
        },
    )
    claims_seed: int = field(
        default=0, metadata={"help": "Seed of the subject split and of claim sampling."}
    )
    transforms: list[str] = field(
        default_factory=lambda: list(_transform_names()),
        metadata={
            "help": "FactCC-style transformations of real sentences (the KB's passages and "
            "`--documents`) added to training: paraphrase (supported); entity_swap, "
            "number_swap, date_swap, negation (refuted); other_passage, sentence_removed (not "
            "enough info). Empty: none."
        },
    )
    hard_nei: list[str] = field(
        default_factory=lambda: list(_hard_nei_names()),
        metadata={
            "help": "Kinds of hard not-enough-info pairs (evidence on the claim's subject or "
            "topic that does not decide it): same_document (another sentence of the same "
            "passage), neighbour (the nearest sentence of another passage), "
            "kb_other_relation (the KB's facts about the same subject with other relations). "
            "Built from the KB and `--documents`, training subjects only. Empty: none."
        },
    )
    hard_nei_share: float = field(
        default=0.4,
        metadata={
            "help": "Share of the not-enough-info pairs built from the KB and documents that "
            "are hard pairs (at most: fewer when fewer can be built; labelled pairs do not "
            "count). Without them a checker learns 'on topic and "
            "not the same → refuted'; 0 leaves them out, 1 makes every not-enough-info pair "
            "a hard one."
        },
    )
    max_document_sentences: int = field(
        default=500,
        metadata={
            "help": "Sentences of passages and documents transformed, at most (each gives up "
            "to `transforms_per_sentence` pairs)."
        },
    )
    transforms_per_sentence: int = field(
        default=2, metadata={"help": "Transformations drawn per sentence, at most."}
    )
    balance: bool = field(
        default=True,
        metadata={
            "help": "Resample the training pairs to the same count per label (the mean count), "
            "so no verdict is learned as the default."
        },
    )
    dev_fraction: float = field(
        default=0.1,
        metadata={
            "help": "Fraction of training pairs (per label) held out as a dev split; the "
            "checker's per-label calibration biases are fitted on it."
        },
    )

    def __post_init__(self) -> None:
        if not 0 < self.test_fraction < 1:
            raise ValueError(f"`test_fraction` must be in (0, 1), got {self.test_fraction}")
        if not 0 <= self.hide_fraction < 1:
            raise ValueError(f"`hide_fraction` must be in [0, 1), got {self.hide_fraction}")
        if not 0 <= self.counterfactual_rate <= 1:
            raise ValueError(
                f"`counterfactual_rate` must be in [0, 1], got {self.counterfactual_rate}"
            )
        if not 0 <= self.alias_rate <= 1:
            raise ValueError(f"`alias_rate` must be in [0, 1], got {self.alias_rate}")
        unknown = [f for f in self.forms if f not in FORMS]
        if unknown or not self.forms:
            raise ValueError(
                f"`forms` must name registered forms {sorted(FORMS)}; got {self.forms!r}"
            )
        for name in (
            "max_train_claims",
            "max_test_claims",
            "evidence_k",
            "max_document_sentences",
            "transforms_per_sentence",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be >= 1, got {getattr(self, name)}")
        unknown = [t for t in self.transforms if t not in _transform_names()]
        if unknown:
            raise ValueError(
                f"`transforms` names {unknown}; registered: {sorted(_transform_names())}"
            )
        unknown = [t for t in self.hard_nei if t not in _hard_nei_names()]
        if unknown:
            raise ValueError(f"`hard_nei` names {unknown}; registered: {sorted(_hard_nei_names())}")
        if not 0 <= self.hard_nei_share <= 1:
            raise ValueError(f"`hard_nei_share` must be in [0, 1], got {self.hard_nei_share}")
        if not 0 <= self.dev_fraction < 0.5:
            raise ValueError(f"`dev_fraction` must be in [0, 0.5), got {self.dev_fraction}")


def _hard_nei_names() -> tuple[str, ...]:
    from grounded.factcheck.hard_nei import HARD_NEI

    return tuple(HARD_NEI)


def _transform_names() -> tuple[str, ...]:
    from grounded.factcheck.transforms import TRANSFORMS

    return tuple(TRANSFORMS)


@dataclass
class ClaimData:
    """What :func:`build_claim_data` returns.

    Attributes:
        dataset: ``train`` and ``test`` splits. Columns: ``claim`` (what the checker reads:
            question then text), ``text``, ``question`` ("" when none), ``evidence`` (alias
            notes, then the joined top-k), ``evidence_keys``, ``label`` (ClassLabel over
            :data:`LABELS`), ``subject``, ``relation``, ``objects``, ``form``, ``kind``.
        view: the knowledge base with the held-out pairs removed; verdicts on the test split
            are judged against it.
        hidden: the held-out (subject, relation) pairs.
    """

    dataset: DatasetDict
    view: KnowledgeBase
    hidden: tuple[Pair, ...]

    def stats(self) -> dict[str, Any]:
        """Claims per split, label, kind and form, and distinct subjects per split."""
        out: dict[str, Any] = {"hidden_pairs": len(self.hidden)}
        for name, split in self.dataset.items():
            labels = [LABELS[i] for i in split["label"]]
            out[name] = {
                "claims": len(split),
                "subjects": len(set(split["subject"])),
                "labels": {lab: labels.count(lab) for lab in LABELS},
                "kinds": _counts(split["kind"]),
                "forms": _counts(split["form"]),
                "relations": _counts(split["relation"]),
            }
        return out


def _counts(values: Sequence[str]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for v in values:
        out[v] += 1
    return dict(sorted(out.items()))


def split_subjects(
    subjects: Sequence[EntityId], test_fraction: float, seed: int
) -> tuple[set[EntityId], set[EntityId]]:
    """Split subjects into (train, test), reproducibly for a seed, whatever the input order.

    At least one subject goes to each side when there are two or more.

    Example:
        >>> train, test = split_subjects(["a", "b", "c", "d", "e"], 0.2, seed=0)
        >>> len(train), len(test), train.isdisjoint(test)
        (4, 1, True)
    """
    ordered = sorted(set(subjects))
    random.Random(f"split:{seed}").shuffle(ordered)
    n_test = round(test_fraction * len(ordered))
    if len(ordered) >= 2:
        n_test = min(max(n_test, 1), len(ordered) - 1)
    return set(ordered[n_test:]), set(ordered[:n_test])


def graph_label(
    kg: KnowledgeGraph, subject: EntityId, relation: str, objects: Sequence[str]
) -> Label:
    """The label the graph gives a claim: any object contradicted → refuted, all supported →
    supported, else not enough info (:func:`kg.check.judge_objects`, the one graph judge)."""
    result = judge_objects(kg, subject, relation, objects).result
    return {"supported": "supported", "contradicted": "refuted"}.get(result, "not_enough_info")  # type: ignore[return-value]


class _Sampler:
    """Draws claims for pairs: objects, names (aliases), surface forms."""

    def __init__(self, kb: KnowledgeBase, reader: ClaimReader, config: ClaimDataConfig) -> None:
        self.kg = kb.graph
        self.reader = reader
        self.config = config
        self.rng = random.Random(f"claims:{config.claims_seed}")
        self.wrong_pools = {}
        for rel in self.kg.schema:
            own = sorted(reader.relation_objects.get(rel.name, ()))
            self.wrong_pools[rel.name] = (
                own if len(own) >= 3 else list(self.kg.object_pool(rel.name))
            )

    def name(self, entity: EntityId) -> str:
        aliases = [a for a in self.kg.aliases.get(entity, ()) if self.kg.resolve(a) == (entity,)]
        if aliases and self.rng.random() < self.config.alias_rate:
            return self.rng.choice(aliases)
        return entity

    def wrong(self, relation: str, true: Sequence[EntityId]) -> EntityId | None:
        pool = self.wrong_pools[relation]
        taken = set(true)
        for _ in range(20):
            o = self.rng.choice(pool) if pool else None
            if o is not None and o not in taken:
                return o
        return None

    def surface(self, relation: str, subject: str, objects: list[str]) -> tuple[str, Surface]:
        rel = self.kg.schema[relation]
        forms = list(self.config.forms)
        self.rng.shuffle(forms)
        if len(objects) > 1:
            forms = [f for f in forms if f in LIST_FORMS] or forms
        for name in forms:
            s = FORMS[name](rel, subject, objects, self.rng)
            if s is not None:
                return name, s
        return "statement", Surface(rel.statement(subject, objects[0]))

    def claims(self, pair: Pair, role: str) -> list[dict[str, Any]]:
        subject, relation = pair
        rel = self.kg.schema[relation]
        true = self.kg.objects(subject, relation)
        specs: list[tuple[str, list[EntityId]]] = []
        if role == "present":
            if len(true) > 1 and self.rng.random() < 0.4:
                specs.append(("true_objects", self.rng.sample(true, min(3, len(true)))))
            else:
                specs.append(("true_object", [self.rng.choice(true)]))
            wrong = self.wrong(relation, true)
            if wrong is not None:
                kind = "wrong_object" if rel.functional or rel.closed else "open_wrong_object"
                specs.append((kind, [wrong]))
        elif role == "hidden":
            wrong = self.wrong(relation, true) if self.rng.random() < 0.5 else None
            specs.append(
                ("hidden_wrong", [wrong]) if wrong else ("hidden_true", [self.rng.choice(true)])
            )
        else:  # a pair the graph never had
            wrong = self.wrong(relation, true)
            if wrong is not None:
                specs.append(("gap", [wrong]))
        rows = []
        for kind, objects in specs:
            form, s = self.surface(relation, self.name(subject), [self.name(o) for o in objects])
            rows.append(
                {
                    "claim": s.claim,
                    "text": s.text,
                    "question": s.question,
                    "subject": subject,
                    "relation": relation,
                    "objects": list(objects),
                    "form": form,
                    "kind": kind,
                }
            )
        return rows


def _pairs_by_relation(
    kg: KnowledgeGraph, reader: ClaimReader, subjects: set[EntityId], gaps: bool
) -> dict[str, list[tuple[Pair, bool]]]:
    """Relation → [((subject, relation), is_gap)] for ``subjects``, sorted."""
    out: dict[str, set[tuple[Pair, bool]]] = defaultdict(set)
    for t in kg.triples():
        if t.subject in subjects:
            out[t.relation].add(((t.subject, t.relation), False))
    if gaps:
        for rel in kg.schema:
            if not rel.subject_type:
                continue
            have = reader.relation_subjects.get(rel.name, frozenset())
            for s in reader.typed.get(rel.subject_type, ()):
                if s in subjects and s not in have:
                    out[rel.name].add(((s, rel.name), True))
    return {r: sorted(v) for r, v in sorted(out.items())}


def _sample_split(
    sampler: _Sampler,
    by_relation: dict[str, list[tuple[Pair, bool]]],
    budget: int,
    hidden: set[Pair],
) -> list[dict[str, Any]]:
    """Round-robin over relations so small relations are not drowned by large ones."""
    rng, hide = sampler.rng, sampler.config.hide_fraction
    queues = {r: rng.sample(v, len(v)) for r, v in by_relation.items()}
    rows: list[dict[str, Any]] = []
    while len(rows) < budget and any(queues.values()):
        for r in list(queues):
            if not queues[r] or len(rows) >= budget:
                continue
            pair, is_gap = queues[r].pop()
            role = "gap" if is_gap else "hidden" if rng.random() < hide else "present"
            if role == "hidden":
                hidden.add(pair)
            rows.extend(sampler.claims(pair, role))
    return rows[:budget]


def build_claim_data(
    kb: KnowledgeBase,
    config: ClaimDataConfig | None = None,
    *,
    splits: Sequence[str] = ("train", "test"),
    show_progress: bool = True,
) -> ClaimData:
    """Build fact-checking claims with retrieved evidence from any knowledge base.

    Args:
        kb: a knowledge base built by ``grounded kb build``.
        config: settings; defaults if None.
        splits: the splits to return; claims of both are always sampled (the same seed
            gives the same claims and held-out pairs), evidence is retrieved only for these.
        show_progress: show a progress bar while retrieving evidence.

    Returns:
        :class:`ClaimData`: the ``train``/``test`` ``DatasetDict``, the held-out view, the
        held-out pairs.

    Raises:
        ValueError: the knowledge base has fewer than two subjects, or ``splits`` names a
            split other than ``train`` and ``test``.

    Example:
        >>> data = build_claim_data(kb, ClaimDataConfig(max_train_claims=100))  # doctest: +SKIP
        >>> data.dataset["train"][0]["claim"], data.dataset["train"][0]["label"]  # doctest: +SKIP
        ('The capital of Chad is Paris.', 1)
    """
    from datasets import ClassLabel, Dataset, DatasetDict
    from tqdm.auto import tqdm

    config = config or ClaimDataConfig()
    bad = [s for s in splits if s not in ("train", "test")]
    if bad or not splits:
        raise ValueError(f"`splits` must name train and/or test, got {list(splits)!r}")
    kg = kb.graph
    reader = ClaimReader(kg)
    subjects = {t.subject for t in kg.triples()}
    if len(subjects) < 2:
        raise ValueError(
            f"knowledge base {kb.name!r} has {len(subjects)} subject(s); a subject split needs 2+"
        )
    train_subjects, test_subjects = split_subjects(
        sorted(subjects), config.test_fraction, config.claims_seed
    )
    sampler = _Sampler(kb, reader, config)
    hidden: set[Pair] = set()
    rows = {
        "train": _sample_split(
            sampler,
            _pairs_by_relation(kg, reader, train_subjects, config.gaps),
            config.max_train_claims,
            hidden,
        ),
        "test": _sample_split(
            sampler,
            _pairs_by_relation(kg, reader, test_subjects, config.gaps),
            config.max_test_claims,
            hidden,
        ),
    }
    view = hide_facts(kb, hidden)
    retriever = view.retriever_for(_retrieval_config(config.evidence_k))
    built = {}
    for name, split_rows in rows.items():
        if name not in splits:
            continue
        chunk = 256
        bar = tqdm(
            total=len(split_rows),
            desc=f"evidence ({name})",
            disable=not show_progress,
            unit="claim",
        )
        for i in range(0, len(split_rows), chunk):
            part = split_rows[i : i + chunk]
            for row, ev in zip(
                part, retriever.retrieve_batch([r["claim"] for r in part]), strict=True
            ):
                notes = alias_notes(view.graph.linker, row["claim"]) if config.alias_notes else []
                row["evidence"] = join_evidence(notes + [e.text for e in ev])
                row["evidence_keys"] = [e.key for e in ev]
                row["label"] = LABELS.index(
                    graph_label(view.graph, row["subject"], row["relation"], row["objects"])
                )
            bar.update(len(part))
        bar.close()
        if name == "train" and config.counterfactual_rate > 0:
            split_rows = split_rows + _counterfactuals(view, split_rows, config)
        columns = {
            k: [r[k] for r in split_rows]
            for k in (
                "claim",
                "text",
                "question",
                "evidence",
                "evidence_keys",
                "label",
                "subject",
                "relation",
                "objects",
                "form",
                "kind",
            )
        }
        ds = Dataset.from_dict(columns)
        built[name] = ds.cast_column("label", ClassLabel(names=list(LABELS)))
    return ClaimData(DatasetDict(built), view, tuple(sorted(hidden)))


_SPARE = 4
"""Retrieved items beyond ``evidence_k`` that backfill a counterfactual's evidence."""


def _counterfactuals(
    view: KnowledgeBase, rows: list[dict[str, Any]], config: ClaimDataConfig
) -> list[dict[str, Any]]:
    """Not-enough-info twins of supported and refuted rows (see ``counterfactual_rate``).

    A twin's evidence is what retrieval returns for the claim with every fact of its
    (subject, relation) removed and passage sentences naming those objects (or their
    aliases) cut: the evidence of a knowledge base that never had the pair, as for the
    held-out claims. Its ``kind`` is ``counterfactual``.
    """
    from grounded.factcheck.heldout import scrub_passage

    rng = random.Random(f"counterfactual:{config.claims_seed}")
    nei = LABELS.index("not_enough_info")
    chosen = [r for r in rows if r["label"] != nei and rng.random() < config.counterfactual_rate]
    retriever = view.retriever_for(_retrieval_config(config.evidence_k + _SPARE))
    kg = view.graph
    out = []
    for i in range(0, len(chosen), 256):
        part = chosen[i : i + 256]
        for row, ev in zip(part, retriever.retrieve_batch([r["claim"] for r in part]), strict=True):
            pair = (row["subject"], row["relation"])
            objects = kg.objects(*pair)
            names = [*objects, *(a for o in objects for a in kg.aliases.get(o, ()))]
            texts: list[str] = []
            keys: list[str] = []
            for e in ev:
                if e.triple is not None and (e.triple.subject, e.triple.relation) == pair:
                    continue
                text = e.text
                if e.kind != "fact":
                    scrubbed = scrub_passage(Passage(e.key, e.text, ()), names)
                    if scrubbed is None:
                        continue
                    text = scrubbed.text
                texts.append(text)
                keys.append(e.key)
                if len(texts) == config.evidence_k:
                    break
            notes = alias_notes(kg.linker, row["claim"]) if config.alias_notes else []
            out.append(
                {
                    **row,
                    "evidence": join_evidence(notes + texts),
                    "evidence_keys": keys,
                    "label": nei,
                    "kind": "counterfactual",
                }
            )
    return out


def _retrieval_config(k: int) -> Any:
    from grounded.retrieval import RetrievalConfig

    return RetrievalConfig(k=k)
