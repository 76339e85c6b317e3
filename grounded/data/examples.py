"""Training examples from the KB's question templates, with evidence from the real retriever.

One example per (pair, question template): the question, the retriever's top-k evidence for
it (the gold facts plus whatever else ranks high: the distractors), the target, and the
negatives the knowledge-constraint loss pushes down.

- A fraction ``p_no_gold`` of examples has every fact of its (subject, relation) removed
  from the evidence (the next-ranked items fill the slots) and targets the abstention
  phrase, as RAFT and R-Tuning do: the model learns to answer from evidence, not around it.
- When the retriever misses gold facts, they are inserted at random slots in place of the
  lowest-ranked distractors; at least one distractor stays when ``k`` > 1.
- The target names the gold objects present in the evidence (a many-valued pair may have
  more objects than slots; stating fewer items is still correct for the evaluator). Without
  evidence (ungrounded SFT) it names every object.
- Negatives are objects the graph contradicts for the pair (functional relations, or closed
  many-valued ones; none for open ones): those present in the retrieved distractors first,
  then type-compatible objects drawn with the seed.
- A fraction ``p_counterfactual`` of the answerable examples is counterfactual, as in KAFT
  (Li et al. 2022): each gold fact in the evidence names another object of the right type
  instead (:meth:`kg.KnowledgeGraph.object_pool`), the target follows the evidence, and the
  true objects become the negatives: the model learns to answer from what it reads over
  what it remembers. Their evidence is text only (no index vector says the substitute).
  Subjects in ``counterfactual_exclude`` (the evaluation's counterfactual group) never get one.
- ``out_of_kb`` pairs (made-up subjects, KB subjects asked a relation they lack; never the
  evaluation's: :func:`grounded.data.groups.training_out_of_kb_pairs`) add one example each:
  the retriever's evidence for the question, which cannot hold the pair, and the abstention
  as the target. With ``p_no_gold`` (evidence about other subjects and relations, the gold
  removed) they teach: abstain when the evidence does not hold the subject and relation.
- A fraction ``p_closed_book`` of the pairs adds a closed-book example (no evidence, the
  KB objects as the target): a loss on closed-book pairs that keeps the base's habit of
  answering from memory when it is given nothing to read, so what the ``known`` group
  measures is not trained away. Only seen pairs are used: the known group stays untouched.

Each row's ``kind`` says which of these it is: ``answer``, ``no_gold``, ``counterfactual``,
``out_of_kb`` or ``closed_book`` (:data:`EXAMPLE_KINDS`).
"""

from __future__ import annotations

import random
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from grounded.answers import format_answer
from grounded.data.groups import Pair
from grounded.data.prompts import format_prompt, question_offset
from kg import Triple, check_claim, normalize

if TYPE_CHECKING:
    import datasets

    from grounded.kb import KnowledgeBase
    from grounded.retrieval import HybridRetriever
    from kg import KnowledgeGraph

EvidenceItem = tuple[int, str, Triple | None]  # (index id, text, fact or None for a passage)
EXAMPLE_KINDS = ("answer", "no_gold", "counterfactual", "out_of_kb", "closed_book")


def example_features() -> datasets.Features:
    """The column types of :func:`build_examples`' dataset."""
    from datasets import Features, Sequence, Value

    text_list = Sequence(Value("string"))
    return Features(
        {
            "id": Value("int64"),
            "question": Value("string"),
            "prompt": Value("string"),
            "answer": Value("string"),
            "subject": Value("string"),
            "relation": Value("string"),
            "group": Value("string"),
            "abstain": Value("bool"),
            "gold_objects": text_list,
            "gold_inserted": Value("bool"),
            "evidence_ids": Sequence(Value("int64")),
            "evidence_texts": text_list,
            "negatives": text_list,
            "negatives_from_evidence": Value("int32"),
            "mention_starts": Sequence(Value("int32")),
            "mention_ends": Sequence(Value("int32")),
            "mention_entities": text_list,
            "counterfactual": Value("bool"),
            "kind": Value("string"),
        }
    )


def build_examples(
    kb: KnowledgeBase,
    pairs: Sequence[Pair],
    *,
    retriever: HybridRetriever | None = None,
    k: int = 5,
    text_evidence: bool = True,
    retrieve: bool = True,
    p_no_gold: float = 0.2,
    n_negatives: int = 3,
    questions_per_pair: int = 0,
    link_mentions: bool = False,
    seed: int = 0,
    group: str = "seen",
    heldout_templates: Mapping[str, Sequence[int]] | None = None,
    p_counterfactual: float = 0.0,
    counterfactual_exclude: Collection[str] = (),
    out_of_kb: Sequence[Pair] = (),
    p_closed_book: float = 0.0,
) -> datasets.Dataset:
    """Build the examples of ``pairs`` as a :class:`datasets.Dataset`.

    Args:
        kb: the knowledge base.
        pairs: the (subject, relation) pairs (usually ``groups.seen``).
        retriever: the retriever giving evidence (default: ``kb.retriever``).
        k: evidence items per example.
        text_evidence: write the evidence into the prompt (text injection); with False the
            evidence is only carried as index ids (embedding injection).
        retrieve: retrieve evidence at all; False builds ungrounded question-answer pairs
            (no evidence, no abstention examples).
        p_no_gold: share of examples with the gold facts removed, targeting the abstention.
        n_negatives: negatives per example for the knowledge-constraint loss.
        questions_per_pair: question templates used per pair; 0 uses all of them.
        link_mentions: record linked entity mentions (character spans in the prompt) for
            ERNIE-style entity vectors.
        seed: seed of every random choice (abstention draw, insertion slots, negatives).
        group: the entity group written into each example.
        heldout_templates: relation → question templates never used here (evaluation only;
            :attr:`grounded.data.groups.EntityGroups.heldout_templates`).
        p_counterfactual: share of answerable examples made counterfactual (see the module).
        counterfactual_exclude: subjects never made counterfactual (the evaluation's group).
        out_of_kb: pairs without an object in the KB: one abstention example each, with
            retrieved evidence (none without ``retrieve``).
        p_closed_book: share of the pairs' questions that add a closed-book example.

    Returns:
        One row per example with the columns of :func:`example_features`.

    Raises:
        ValueError: a setting is out of range, or a pair's relation has no question template.
    """
    from datasets import Dataset

    if k < 1:
        raise ValueError(f"`k` must be >= 1, got {k}")
    if not 0.0 <= p_no_gold < 1.0:
        raise ValueError(f"`p_no_gold` must be in [0, 1), got {p_no_gold}")
    for name, value in (("p_counterfactual", p_counterfactual), ("p_closed_book", p_closed_book)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"`{name}` must be in [0, 1], got {value}")
    if n_negatives < 0 or questions_per_pair < 0:
        raise ValueError(
            f"`n_negatives` and `questions_per_pair` must be >= 0, got {n_negatives} and "
            f"{questions_per_pair}"
        )
    graph = kb.graph
    rng = random.Random(f"grounded-examples-{seed}")
    items: list[tuple[str, str, str]] = []
    held = heldout_templates or {}
    for s, r in pairs:
        n = len(graph.schema[r].questions)
        if not n:
            raise ValueError(f"relation {r!r} has no question template; add one to relations.json")
        templates = [i for i in range(n) if i not in set(held.get(r, ()))]
        if not templates:
            raise ValueError(f"every question template of {r!r} is held out; keep one for training")
        if questions_per_pair and questions_per_pair < len(templates):
            templates = sorted(rng.sample(templates, questions_per_pair))
        items.extend((s, r, graph.schema[r].question(s, i)) for i in templates)
    abstain = [retrieve and rng.random() < p_no_gold for _ in items]
    # Drawn from their own stream, so turning counterfactuals on changes no other example.
    cf_rng = random.Random(f"grounded-counterfactual-{seed}")
    excluded = set(counterfactual_exclude)
    counterfactual = [
        cf_rng.random() < p_counterfactual and retrieve and s not in excluded for s, _, _ in items
    ]
    kinds = ["kb"] * len(items)
    # New kinds come after the KB examples, from their own streams: the others stay as drawn.
    if retrieve and out_of_kb:
        oob_rng = random.Random(f"grounded-out-of-kb-examples-{seed}")
        for s, r in out_of_kb:
            rel = graph.schema[r]
            question = rel.question(s, oob_rng.randrange(len(rel.questions)))
            items.append((s, r, question))
        kinds += ["out_of_kb"] * len(out_of_kb)
    if retrieve and p_closed_book:
        cb_rng = random.Random(f"grounded-closed-book-{seed}")
        chosen = [it for it, k in zip(items, kinds, strict=True) if k == "kb"]
        chosen = [it for it in chosen if cb_rng.random() < p_closed_book]
        items.extend(chosen)
        kinds += ["closed_book"] * len(chosen)
    abstain += [False] * (len(items) - len(abstain))
    counterfactual += [False] * (len(items) - len(counterfactual))
    if retrieve:
        retriever = retriever or kb.retriever
        # Spare candidates refill the slots of removed gold facts.
        pools = retriever.retrieve_batch([q for _, _, q in items], 2 * k + 8)
    else:
        pools = [[] for _ in items]
    negative_pool = _negative_pools(graph)
    rows = []
    for i, ((s, r, question), no_gold, pool, cf, kind) in enumerate(
        zip(items, abstain, pools, counterfactual, kinds, strict=True)
    ):
        candidates = [(e.id, e.text, e.triple) for e in pool]
        if not retrieve or kind == "closed_book":
            evidence, inserted, objects = [], False, graph.objects(s, r)
        elif kind == "out_of_kb":
            evidence, inserted, objects = candidates[:k], False, []
        elif no_gold:
            evidence = [c for c in candidates if not _is_pair(c[2], s, r)][:k]
            inserted, objects = False, []
        else:
            evidence, inserted = _with_gold(kb, candidates, s, r, k, rng)
            present = {c[2].object for c in evidence if _is_pair(c[2], s, r)}
            objects = [o for o in graph.objects(s, r) if o in present]
        distractors = [c[2] for c in evidence if c[2] is not None and not _is_pair(c[2], s, r)]
        negatives, from_evidence = contradicted_objects(
            graph, s, r, distractors, n_negatives, rng, negative_pool
        )
        swapped = counterfactual_evidence(graph, evidence, s, r, cf_rng) if cf and objects else None
        if swapped is not None:
            evidence, swaps = swapped
            objects = [swaps.get(o, o) for o in objects]
            negatives, from_evidence = list(swaps), 0  # the remembered truth is now wrong
        row = prompt_fields(graph, question, evidence, text_evidence, link_mentions)
        if kind == "kb":
            kind = "counterfactual" if swapped is not None else "no_gold" if no_gold else "answer"
        rows.append(
            {
                "id": i,
                **row,
                "answer": format_answer(objects),
                "subject": s,
                "relation": r,
                "group": group,
                "abstain": not objects,
                "gold_objects": list(objects),
                "gold_inserted": inserted,
                "negatives": [format_answer([o]) for o in negatives],
                "negatives_from_evidence": from_evidence,
                "counterfactual": swapped is not None,
                "kind": kind,
            }
        )
    return Dataset.from_list(rows, features=example_features())


def counterfactual_evidence(
    graph: KnowledgeGraph,
    evidence: Sequence[EvidenceItem],
    subject: str,
    relation: str,
    rng: random.Random,
) -> tuple[list[EvidenceItem], dict[str, str]] | None:
    """``evidence`` with every gold fact of ``(subject, relation)`` naming another object of
    the right type, and the substitutions (true object → substitute); None when the
    relation's object pool has no object to substitute.

    A substituted item has index id -1: no index vector says the substitute.

    Example:
        >>> from kg import KnowledgeGraph, Relation, Schema
        >>> g = KnowledgeGraph([Triple("A", "capital", "X"), Triple("B", "capital", "Y")],
        ...     Schema([Relation("capital", "The capital of {subject} is {object}.")]))
        >>> ev = [(0, "The capital of A is X.", Triple("A", "capital", "X"))]
        >>> out, swaps = counterfactual_evidence(g, ev, "A", "capital", random.Random(0))
        >>> out[0][:2], swaps
        ((-1, 'The capital of A is Y.'), {'X': 'Y'})
    """
    true = set(graph.objects(subject, relation))
    pool = [o for o in graph.object_pool(relation) if o not in true]
    gold = [c for c in evidence if _is_pair(c[2], subject, relation)]
    if not gold or len(pool) < len(gold):
        return None
    substitutes = rng.sample(pool, len(gold))
    swaps = {c[2].object: o for c, o in zip(gold, substitutes, strict=True)}
    out: list[EvidenceItem] = []
    for c in evidence:
        if _is_pair(c[2], subject, relation):
            fake = Triple(subject, relation, swaps[c[2].object])
            out.append((-1, graph.verbalize(fake), fake))
        else:
            out.append(c)
    return out, swaps


def _is_pair(t: Triple | None, s: str, r: str) -> bool:
    return t is not None and t.subject == s and t.relation == r


def _with_gold(
    kb: KnowledgeBase, candidates: list[EvidenceItem], s: str, r: str, k: int, rng: random.Random
) -> tuple[list[EvidenceItem], bool]:
    """Top-``k`` candidates, missing gold facts put at random slots in place of the
    lowest-ranked distractors (gold facts may fill every slot but one)."""
    evidence = candidates[:k]
    present = {c[2] for c in evidence if _is_pair(c[2], s, r)}
    room = max(1, k - 1) - len(present)
    missing = [t for t in kb.graph.facts(s, r) if t not in present][: max(room, 0)]
    if not missing:
        return evidence, False
    n_drop = len(evidence) + len(missing) - k
    if n_drop > 0:
        distractor_slots = [j for j, c in enumerate(evidence) if not _is_pair(c[2], s, r)]
        drop = set(distractor_slots[-n_drop:])
        evidence = [c for j, c in enumerate(evidence) if j not in drop]
    for t in missing:
        evidence.insert(
            rng.randint(0, len(evidence)), (kb.index.id_of(t.key), kb.graph.verbalize(t), t)
        )
    return evidence, True


def _negative_pools(graph: KnowledgeGraph) -> dict[str, list[str]]:
    """Per relation, the type-compatible objects a negative may be drawn from."""
    return {rel.name: list(graph.object_pool(rel.name)) for rel in graph.schema}


def contradicted_objects(
    graph: KnowledgeGraph,
    subject: str,
    relation: str,
    distractors: Sequence[Triple],
    n: int,
    rng: random.Random,
    pools: dict[str, list[str]] | None = None,
) -> tuple[list[str], int]:
    """Up to ``n`` objects the graph contradicts for ``(subject, relation)``.

    Candidates in ``distractors`` come first (their objects, and their subjects when of the
    relation's object type), then type-compatible objects of the graph in random order.
    Open many-valued relations have none: the graph cannot contradict them.

    Returns:
        The objects, and how many of them came from the distractors.
    """
    rel = graph.schema[relation]
    if n == 0 or not (rel.functional or rel.closed):
        return [], 0
    compatible: list[str] = []
    for t in distractors:
        if t.relation == relation or (
            rel.object_type is not None and graph.schema[t.relation].object_type == rel.object_type
        ):
            compatible.append(t.object)
        if rel.object_type is not None and graph.schema[t.relation].subject_type == rel.object_type:
            compatible.append(t.subject)
    pool = list((pools or _negative_pools(graph))[relation])
    rng.shuffle(pool)
    gold = {normalize(o) for o in graph.objects(subject, relation)}
    out: list[str] = []
    seen: set[str] = set(gold)
    from_evidence = 0
    for i, o in enumerate(compatible + pool):
        key = normalize(o)
        if key in seen or o == subject:
            continue
        seen.add(key)
        if check_claim(graph, subject, relation, o).result == "contradicted":
            out.append(o)
            from_evidence += i < len(compatible)
            if len(out) == n:
                break
    return out, from_evidence


def prompt_fields(
    graph: KnowledgeGraph | None,
    question: str,
    evidence: Sequence[EvidenceItem],
    text_evidence: bool,
    link_mentions: bool,
) -> dict[str, Any]:
    """The fields a model reads for ``question``: prompt, evidence ids and texts, mentions.

    Shared by the training examples and generation, so both see the same prompt.
    Mentions are (start, end) character spans in the prompt with tab-joined candidates.
    """
    prompt = format_prompt(question, [c[1] for c in evidence] if text_evidence else None)
    offset = question_offset(prompt)
    mentions = graph.linker.link(question) if link_mentions and graph is not None else []
    return {
        "question": question,
        "prompt": prompt,
        # A counterfactual fact (id -1) is in no index: it reaches the model as text only.
        "evidence_ids": [c[0] for c in evidence if c[0] >= 0],
        "evidence_texts": [c[1] for c in evidence],
        "mention_starts": [m.start + offset for m in mentions],
        "mention_ends": [m.end + offset for m in mentions],
        "mention_entities": ["\t".join(m.candidates) for m in mentions],
    }
