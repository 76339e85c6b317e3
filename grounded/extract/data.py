"""Training examples for the model extractor: (sentence, triples) pairs from any KB, and
from labelled text where a user has some.

**From a KB** (:func:`examples_from_kb`): every fact is rendered through its relation's
schema (statement template, the other tense, the statements its questions imply, the
plural template for a subject with several objects), inside varied frames that depend on no
domain: a lead-in ("According to one source, ..."), a trailing clause, an appositive giving
the subject's type where the schema declares one ("X, a person, ..."), and passages of two
or three facts in one example (several lines in the target). Distractor sentences name the
KB's entities without stating any relation ("Little is known about X."; "X and Y are both
listed in the index."): their target is ``none``.

**Labelled text** (:func:`read_labelled`): a JSONL file, one sentence a line::

    {"text": "Dune was written by Frank Herbert.", "triples": [["Dune", "author", "Frank Herbert"]]}

``triples`` may also hold objects ``{"subject": ..., "relation": ..., "object": ...}``; an
empty list makes a ``none`` example. A relation missing from the schema is an error naming
the file and line; a head or tail that is not a span of the text is dropped and counted
(the model can only learn to copy spans).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from grounded.extract.format import find_span, format_prompt, format_target
from kg.extract.patterns import statements_from_question, tense_variant
from kg.schema import Relation, Schema
from kg.tables import SourceFileError, jsonl_objects
from kg.types import Triple

LABELLED_FORMAT = (
    'one JSON object a line: {"text": SENTENCE, "triples": [[HEAD, RELATION, TAIL], ...]}, '
    "HEAD and TAIL written as in SENTENCE, RELATION a name of the schema"
)
_LEADS = ("", "", "According to one source, ", "It is recorded that ", "As noted earlier, ")
_TRAILS = ("", "", ", as the records show", ", according to the archive")
_DISTRACTORS = (
    "Little is known about {a}.",
    "{a} was mentioned in the report.",
    "The article has a section on {a}.",
    "{a} and {b} are both listed in the index.",
    "Both {a} and {b} were discussed at length.",
    "A photograph of {a} appeared next to one of {b}.",
    "Nothing more was said about {a} or {b}.",
)


@dataclass(frozen=True)
class Example:
    """One training pair: a sentence and the triples it states (spans of the sentence).

    Attributes:
        text: the sentence or short passage.
        triples: (head, relation, tail) as written in ``text``; empty: the target is ``none``.
        origin: ``kb``, ``distractor`` or ``labelled`` (counted in the extractor's manifest).
    """

    text: str
    triples: tuple[tuple[str, str, str], ...]
    origin: str

    def prompt(self) -> str:
        return format_prompt(self.text)

    def target(self) -> str:
        return format_target(self.triples)


def _lower_first(sentence: str) -> str:
    """Lower-case a leading article so the sentence can follow a lead-in; names stay."""
    first = sentence.split(" ", 1)[0]
    if first in ("The", "A", "An", "It", "There"):
        return first.lower() + sentence[len(first) :]
    return sentence


def _renderings(rel: Relation) -> list[str]:
    """Statement templates of one relation: the template, its other tense, the statements
    its questions imply (each with ``{subject}`` and ``{object}``)."""
    out = [rel.template]
    if (other := tense_variant(rel.template)) is not None:
        out.append(other)
    for q in rel.questions:
        out += statements_from_question(q)
    return list(dict.fromkeys(t for t in out if "{subject}" in t and "{object}" in t))


def _with_appositive(template: str, subject_type: str | None) -> str | None:
    """``{subject}, a person, ...`` when the subject slot is followed by more words."""
    if not subject_type or "{subject} " not in template:
        return None
    article = "an" if subject_type[:1].lower() in "aeiou" else "a"
    return template.replace("{subject} ", f"{{subject}}, {article} {subject_type}, ", 1)


def _frame(sentence: str, rng: random.Random) -> str:
    lead, trail = rng.choice(_LEADS), rng.choice(_TRAILS)
    body = _lower_first(sentence) if lead else sentence
    if trail and body.endswith("."):
        body = body[:-1] + trail + "."
    return lead + body


def examples_from_kb(
    triples: Sequence[Triple],
    schema: Schema,
    *,
    max_examples: int = 2000,
    distractor_share: float = 0.2,
    multi_share: float = 0.3,
    seed: int = 0,
) -> list[Example]:
    """Sentences rendered from a KB's facts, with distractors (see the module docstring).

    Args:
        triples: the KB's facts; those whose relation is not in ``schema`` are skipped.
        schema: the relations and their templates.
        max_examples: examples to make in all (facts are sampled when there are more).
        distractor_share: the share of examples that state nothing (target ``none``).
        multi_share: the share of fact examples that hold two or three facts.
        seed: the sampling seed (the same inputs and seed give the same examples).

    Raises:
        ValueError: a share outside [0, 1), or ``max_examples`` < 1.

    Example:
        >>> from kg.schema import Relation, Schema
        >>> schema = Schema([Relation("capital", "The capital of {subject} is {object}.")])
        >>> ex = examples_from_kb([Triple("Mongolia", "capital", "Ulaanbaatar")], schema,
        ...                       max_examples=4, distractor_share=0.25, seed=0)
        >>> sum(e.origin == "distractor" for e in ex)
        1
        >>> {e.triples for e in ex if e.origin == "kb"}
        {(('Mongolia', 'capital', 'Ulaanbaatar'),)}
    """
    for name, share in (("distractor_share", distractor_share), ("multi_share", multi_share)):
        if not 0.0 <= share < 1.0:
            raise ValueError(f"`{name}` must be in [0, 1), got {share}")
    if max_examples < 1:
        raise ValueError(f"`max_examples` must be >= 1, got {max_examples}")
    rng = random.Random(seed)
    facts = [t for t in triples if t.relation in schema and t.subject != t.object]
    if not facts:
        return []
    by_subject: dict[str, list[Triple]] = defaultdict(list)
    for t in facts:
        by_subject[t.subject].append(t)
    forms = {rel.name: _renderings(rel) for rel in schema}
    n_distract = round(max_examples * distractor_share)
    n_facts = max_examples - n_distract
    out: list[Example] = []
    order = list(facts)
    rng.shuffle(order)
    for i in range(n_facts):
        first = order[i % len(order)]
        group = [first]
        if rng.random() < multi_share:
            pool = [t for t in by_subject[first.subject] if t != first] or facts
            group += rng.sample(pool, min(len(pool), rng.choice((1, 2))))
        parts, target = [], []
        for t in group:
            rel = schema[t.relation]
            template = rng.choice(forms[rel.name])
            if rng.random() < 0.25 and (appo := _with_appositive(template, rel.subject_type)):
                template = appo
            parts.append(template.format(subject=t.subject, object=t.object))
            target.append((t.subject, t.relation, t.object))
        text = " ".join([_frame(parts[0], rng), *parts[1:]])
        out.append(Example(text, tuple(target), "kb"))
    names = sorted({t.subject for t in facts} | {t.object for t in facts})
    for _ in range(n_distract):
        a, b = rng.sample(names, 2) if len(names) > 1 else (names[0], names[0])
        out.append(Example(rng.choice(_DISTRACTORS).format(a=a, b=b), (), "distractor"))
    rng.shuffle(out)
    return out


def read_labelled(path: str | Path, schema: Schema) -> tuple[list[Example], int]:
    """Labelled sentences from a JSONL file (see the module docstring for the format).

    Returns:
        The examples, and how many triples were dropped because a head or tail is not a
        span of the text.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        kg.SourceFileError: lines that are not JSON objects with ``text`` and ``triples``,
            or that name a relation missing from ``schema`` (every bad line, with its number).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"labelled text {path} does not exist; give a JSONL file: "
                                f"{LABELLED_FORMAT}")  # fmt: skip
    errors: list[tuple[str, int, str]] = []
    out: list[Example] = []
    dropped = 0
    for n, row in jsonl_objects(path, errors):  # bad UTF-8 / JSON lines go to `errors`
        text = row.get("text")
        raw = row.get("triples", [])
        if not isinstance(text, str) or not text.strip() or not isinstance(raw, list):
            errors.append((str(path), n, 'needs "text" (a string) and "triples" (a list)'))
            continue
        triples = []
        for t in raw:
            if isinstance(t, dict):
                t = [t.get("subject"), t.get("relation"), t.get("object")]
            if not (isinstance(t, list) and len(t) == 3 and all(isinstance(x, str) for x in t)):
                errors.append((str(path), n, f"a triple must be [head, relation, tail], got {t!r}"))
                continue
            h, r, o = t
            if r not in schema:
                errors.append((str(path), n, f"relation {r!r} is not in the schema "
                               f"(relations: {', '.join(schema.names)})"))  # fmt: skip
                continue
            hs, os_ = find_span(h, text), find_span(o, text)
            if hs is None or os_ is None or hs[0] == os_[0]:
                dropped += 1
                continue
            triples.append((hs[0], r, os_[0]))
        out.append(Example(" ".join(text.split()), tuple(dict.fromkeys(triples)), "labelled"))
    if errors:
        raise SourceFileError(errors, f"expected {LABELLED_FORMAT}")
    return out, dropped
