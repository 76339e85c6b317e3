"""FactCC-style training pairs: rule-based transformations of real sentences.

Each sentence of a passage (the knowledge base's passages, or any documents a user gives)
becomes claims read against that passage (Kryściński et al. 2020, "Evaluating the Factual
Consistency of Abstractive Text Summarization"):

- **paraphrase** (supported): the sentence reworded: a leading phrase moved to the end, an
  aside (parenthesis, appositive) dropped, a main clause kept without its trailing clause, a
  wording swapped for an equivalent ("began" → "started");
- **entity_swap** (refuted): a name replaced by another of the same type: a knowledge-base
  entity of the same type when the linker reads one, else a proper name found elsewhere in
  the documents (never one the evidence mentions);
- **number_swap** (refuted): a number replaced by another one;
- **date_swap** (refuted): a year or a month replaced by another;
- **negation** (refuted): "is" → "is not", "has" → "does not have", "did not" → "did";
- **other_passage** (not enough info): the sentence of another passage that shares the most
  words with this one (a near miss, not a random one);
- **sentence_removed** (not enough info): the sentence itself, read against its passage
  with that sentence taken out.

A transformation is a function ``(Sentence, Corpus, random.Random) -> Transformed | None``
registered by name (:func:`register_transform`); None means it does not apply. Sentences
opening with a pronoun ("Its capital is Kabul.") are resolved to the passage's single
entity when it has one ("Afghanistan's capital is Kabul."), else skipped as claims: a claim
must say whom it is about.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grounded.types import Label
from kg.text import split_sentences

if TYPE_CHECKING:
    from kg import KnowledgeGraph

EVIDENCE_CHARS = 900
"""Longest evidence window around a sentence, in characters (about 200 tokens)."""


@dataclass(frozen=True)
class Transformed:
    """One training pair made from a sentence.

    Attributes:
        claim: the transformed sentence.
        evidence: what the claim is read against.
        label: its verdict by construction.
        kind: the transformation's name.
        source: the original sentence.
    """

    claim: str
    evidence: str
    label: Label
    kind: str
    source: str


@dataclass(frozen=True)
class Sentence:
    """A sentence of a passage: ``passage`` and ``index`` locate it in the corpus."""

    text: str
    passage: int
    index: int


@dataclass
class Corpus:
    """Passages split into sentences, with the pools swaps draw from.

    Build it with :meth:`from_texts`. ``graph`` (optional) gives typed entities: a name the
    linker reads as one entity is swapped for another entity of the same type.
    """

    passages: list[list[str]]
    entities: list[tuple[str, ...]] = field(default_factory=list)
    graph: KnowledgeGraph | None = None
    names: list[str] = field(default_factory=list)
    numbers: list[str] = field(default_factory=list)
    type_of: dict[str, str] = field(default_factory=dict)
    typed: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def from_texts(
        cls,
        texts: Sequence[str],
        entities: Sequence[Sequence[str]] | None = None,
        graph: KnowledgeGraph | None = None,
    ) -> Corpus:
        """Split ``texts`` (one passage each) into sentences and collect the swap pools.

        Args:
            texts: passages (a paragraph, a document).
            entities: per passage, the entities it is about (a knowledge base's passages
                name them); a passage about exactly one resolves leading pronouns to it.
            graph: a knowledge graph whose typed entities serve entity swaps.
        """
        passages = []
        for t in texts:
            spans = split_sentences(t, max_chars=max(20, len(t)), keep_numbers=True)
            passages.append([" ".join(t[a:b].split()) for a, b in spans])
        ents = [tuple(e) for e in entities] if entities is not None else [()] * len(passages)
        corpus = cls(passages, ents, graph)
        names: set[str] = set()
        numbers: set[str] = set()
        for sents in passages:
            for s in sents:
                names.update(name for _, _, name in _proper_names(s))
                numbers.update(m.group() for m in _NUMBER.finditer(s) if not _is_year(m.group()))
        corpus.names = sorted(names)
        corpus.numbers = sorted(numbers)
        if graph is not None:
            from kg.claims import ClaimReader

            typed = ClaimReader(graph).typed
            corpus.typed = {t: sorted(v) for t, v in sorted(typed.items()) if len(v) >= 2}
            for t, members in corpus.typed.items():
                for e in members:
                    corpus.type_of.setdefault(e, t)
        return corpus

    def sentences(self) -> list[Sentence]:
        """Every sentence that can serve as a claim (5 to 60 words, a letter, a subject)."""
        out = []
        for p, sents in enumerate(self.passages):
            for i, s in enumerate(sents):
                claim = self.as_claim(Sentence(s, p, i))
                if claim is not None:
                    out.append(Sentence(claim, p, i))
        return out

    def as_claim(self, sentence: Sentence) -> str | None:
        """The sentence as a claim that says whom it is about (see the module notes)."""
        text = sentence.text
        words = text.split()
        if not 4 <= len(words) <= 60 or not re.search(r"[^\W\d_]", text):
            return None
        m = _PRONOUN.match(text)
        if m is None:
            return text
        ents = self.entities[sentence.passage] if self.entities else ()
        if len(ents) != 1:
            return None
        (entity,) = ents
        word = m.group(1).lower()
        name = f"{entity}'s" if word in ("its", "their", "his", "her") else entity
        return name + text[m.end(1) :]

    def evidence(self, sentence: Sentence, *, drop: bool = False) -> str:
        """The passage around ``sentence`` within :data:`EVIDENCE_CHARS`; ``drop`` leaves the
        sentence itself out."""
        sents = self.passages[sentence.passage]
        i = sentence.index
        chosen = {i}
        size = len(sents[i])
        left, right = i - 1, i + 1
        while left >= 0 or right < len(sents):
            for j in (right, left):
                if 0 <= j < len(sents) and size + len(sents[j]) + 1 <= EVIDENCE_CHARS:
                    chosen.add(j)
                    size += len(sents[j]) + 1
            left, right = left - 1, right + 1
        return " ".join(sents[j] for j in sorted(chosen) if not (drop and j == i))


Transform = Callable[[Sentence, Corpus, random.Random], "Transformed | None"]
TRANSFORMS: dict[str, Transform] = {}
"""Every registered transformation by name."""


def register_transform(name: str) -> Callable[[Transform], Transform]:
    """Decorator adding a transformation to :data:`TRANSFORMS`.

    Raises:
        ValueError: ``name`` is already registered.
    """

    def deco(fn: Transform) -> Transform:
        if name in TRANSFORMS:
            raise ValueError(f"transformation {name!r} is registered twice")
        TRANSFORMS[name] = fn
        return fn

    return deco


# -- patterns ------------------------------------------------------------------------------------
_PRONOUN = re.compile(r"^(It|Its|They|Their|He|His|She|Her|This|These)\b")
_NUMBER = re.compile(
    r"(?<![\w.,])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\w,]\d)|(?<![\w.,])\d+(?:\.\d+)?(?![\w.]\d)"
)
_YEAR = re.compile(r"\b(1[0-9]{3}|20[0-9]{2})\b")
_MONTHS = (
    "January February March April May June July August September October November December"
).split()
_MONTH = re.compile(r"\b(" + "|".join(_MONTHS) + r")\b")
_NAME = re.compile(r"\b[A-Z][\w'’-]*(?:\s+(?:of\s+|de\s+|the\s+)?[A-Z][\w'’-]*)*")
_SENTENCE_START_WORDS = frozenset(
    "The A An In On At It Its This That These Those He She They We I There Here But And Or "
    "As For From By With After Before During When While If Although Since".split()
)
_AUX = re.compile(
    r"\b(is|are|was|were|can|will|would|could|should|may|might|must|has been|have been|"
    r"had been)\b(?!\s+not\b|n['’]t)",
)
_HAS = re.compile(r"\b(has|have|had)\s+(?!been\b|not\b)(?=[a-z])")
_NEGATED = re.compile(r"\b(is|are|was|were|does|do|did|can|will|would|has|have|had)\s+not\s+")
_REWORDINGS = (
    ("began", "started"),
    ("started", "began"),
    ("approximately", "about"),
    ("about", "approximately"),
    ("located in", "situated in"),
    ("situated in", "located in"),
    ("largest", "biggest"),
    ("biggest", "largest"),
    ("received", "was given"),
    ("purchased", "bought"),
    ("bought", "purchased"),
    ("also known as", "also called"),
    ("also called", "also known as"),
    ("however", "nevertheless"),
    ("died", "passed away"),
    ("is called", "is known as"),
    ("is known as", "is called"),
    ("consists of", "is made up of"),
    ("is made up of", "consists of"),
    ("people", "persons"),
)


def _is_year(token: str) -> bool:
    return bool(_YEAR.fullmatch(token))


def _proper_names(text: str) -> Iterable[tuple[int, int, str]]:
    """``(start, end, name)`` of capitalized spans that are names (a possessive "'s" left
    out; a sentence's first word only when it is not a common opener)."""
    for m in _NAME.finditer(text):
        start, name = m.start(), re.sub(r"['’]s$", "", m.group())
        if name in _SENTENCE_START_WORDS or (name.upper() == name and len(name) <= 2):
            continue
        if _MONTH.fullmatch(name):
            continue
        yield start, start + len(name), name


def _mentions_in(name: str, text: str) -> bool:
    return re.search(r"(?<!\w)" + re.escape(name.lower()) + r"(?!\w)", text.lower()) is not None


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


def _pair(s: Sentence, corpus: Corpus, claim: str, label: Label, kind: str) -> Transformed:
    return Transformed(claim, corpus.evidence(s), label, kind, s.text)


# -- supported -----------------------------------------------------------------------------------
_LEADING = re.compile(
    r"^((?:In|On|At|During|After|Before|Since|By|From|Under|Through)\s[^,]{2,60}),\s+(.+?)([.!?])$"
)
_ASIDE = re.compile(r"\s*\([^()]{1,120}\)|,\s+(?:a|an|the|which|who)\s[^,]{2,80},")
_TRAILING = re.compile(r"^(.{25,}?),\s+(?:which|who|where|while|and|but)\s.+?([.!?])$")


@register_transform("paraphrase")
def paraphrase(s: Sentence, corpus: Corpus, rng: random.Random) -> Transformed | None:
    """Supported: the sentence reworded without changing what it states.

    One of the rewordings that apply, at random: a leading phrase moved to the end ("In 2006,
    X won." → "X won in 2006."), an aside dropped ("X (born 1950) won." → "X won."), the main
    clause kept without a trailing clause, a word swapped for an equivalent.

    Example:
        >>> c = Corpus.from_texts(["In 2006, Ada Lovelace won the prize."])
        >>> paraphrase(c.sentences()[0], c, random.Random(0)).claim
        'Ada Lovelace won the prize in 2006.'
    """
    text = s.text
    options: list[str] = []
    m = _LEADING.match(text)
    if m:
        head = m.group(1)
        options.append(_capitalize(m.group(2)) + " " + head[:1].lower() + head[1:] + m.group(3))
    aside = _ASIDE.search(text)
    if aside:
        dropped = (text[: aside.start()] + text[aside.end() :]).replace(" ,", ",")
        options.append(" ".join(dropped.split()))
    m = _TRAILING.match(text)
    if m:
        options.append(m.group(1) + m.group(2))
    for a, b in _REWORDINGS:
        if _mentions_in(a, text):
            options.append(re.sub(r"(?<!\w)" + re.escape(a) + r"(?!\w)", b, text, count=1))
            break
    options = [o for o in options if o != text and len(o.split()) >= 4]
    if not options:
        return None
    return _pair(s, corpus, rng.choice(options), "supported", "paraphrase")


# -- refuted -------------------------------------------------------------------------------------
def _kb_swap(s: Sentence, corpus: Corpus, rng: random.Random, evidence: str) -> str | None:
    graph = corpus.graph
    if graph is None:
        return None
    mentions = [
        m
        for m in graph.linker.link(s.text)
        if len(m.candidates) == 1 and next(iter(m.candidates)) in corpus.type_of
    ]
    rng.shuffle(mentions)
    for m in mentions:
        (entity,) = m.candidates
        pool = corpus.typed[corpus.type_of[entity]]
        for _ in range(10):
            other = rng.choice(pool)
            if other != entity and not _mentions_in(other, evidence):
                return s.text[: m.start] + other + s.text[m.end :]
    return None


@register_transform("entity_swap")
def entity_swap(s: Sentence, corpus: Corpus, rng: random.Random) -> Transformed | None:
    """Refuted: a name replaced by another of the same type that the evidence never mentions.

    With a knowledge graph, a mention the linker reads as one typed entity is replaced by
    another entity of that type. Otherwise a proper name is replaced by one from elsewhere in
    the corpus with as many words (a person's two names for another's two): without a
    tagger, the word count is the type this rule can see.

    Example:
        >>> c = Corpus.from_texts(["Ada Lovelace wrote the first program.", "Alan Turing ran."])
        >>> entity_swap(c.sentences()[0], c, random.Random(0)).claim
        'Alan Turing wrote the first program.'
    """
    evidence = corpus.evidence(s)
    claim = _kb_swap(s, corpus, rng, evidence)
    if claim is None:
        names = list(_proper_names(s.text))
        rng.shuffle(names)
        for start, end, name in names:
            pool = [n for n in corpus.names if not _mentions_in(n, evidence)]
            same = [n for n in pool if len(n.split()) == len(name.split())]
            if not pool:
                return None
            claim = s.text[:start] + rng.choice(same or pool) + s.text[end:]
            break
    if claim is None or claim == s.text:
        return None
    return Transformed(claim, evidence, "refuted", "entity_swap", s.text)


def _other_number(token: str, corpus: Corpus, rng: random.Random) -> str:
    value = float(token.replace(",", ""))
    pool = [n for n in corpus.numbers if n != token]
    if pool and rng.random() < 0.5:
        return rng.choice(pool)
    factor = rng.choice((0.5, 0.7, 1.3, 1.5, 2.0, 3.0))
    new = value * factor if value >= 10 else value + rng.choice((1, 2, 3, 5))
    if "." in token:
        decimals = len(token.split(".")[1])
        out = f"{new:,.{decimals}f}" if "," in token else f"{new:.{decimals}f}"
    else:
        out = f"{round(new):,}" if "," in token else str(round(new))
    return out if out != token else str(int(value) + 1)


@register_transform("number_swap")
def number_swap(s: Sentence, corpus: Corpus, rng: random.Random) -> Transformed | None:
    """Refuted: a number (not a year) replaced by another (a number from the corpus or the
    number scaled).

    Example:
        >>> c = Corpus.from_texts(["The bridge is 1,200 metres long and 30 metres wide."])
        >>> number_swap(c.sentences()[0], c, random.Random(1)).claim
        'The bridge is 600 metres long and 30 metres wide.'
    """
    found = [m for m in _NUMBER.finditer(s.text) if not _is_year(m.group())]
    if not found:
        return None
    m = rng.choice(found)
    claim = s.text[: m.start()] + _other_number(m.group(), corpus, rng) + s.text[m.end() :]
    return _pair(s, corpus, claim, "refuted", "number_swap")


@register_transform("date_swap")
def date_swap(s: Sentence, corpus: Corpus, rng: random.Random) -> Transformed | None:
    """Refuted: a year moved by 1 to 30 years, or a month replaced by another.

    Example:
        >>> c = Corpus.from_texts(["The treaty was signed in March 1994 in Lisbon."])
        >>> date_swap(c.sentences()[0], c, random.Random(0)).claim
        'The treaty was signed in January 1994 in Lisbon.'
    """
    years = list(_YEAR.finditer(s.text))
    months = list(_MONTH.finditer(s.text))
    if not years and not months:
        return None
    if years and (not months or rng.random() < 0.7):
        m = rng.choice(years)
        new = str(int(m.group()) + rng.choice((-1, 1)) * rng.randint(1, 30))
    else:
        m = rng.choice(months)
        new = rng.choice([x for x in _MONTHS if x != m.group()])
    claim = s.text[: m.start()] + new + s.text[m.end() :]
    return _pair(s, corpus, claim, "refuted", "date_swap")


@register_transform("negation")
def negation(s: Sentence, corpus: Corpus, rng: random.Random) -> Transformed | None:
    """Refuted: the sentence negated ("is" → "is not", "has" → "does not have"), or a
    negation removed ("was not" → "was", "was never built" → "was built").

    Example:
        >>> c = Corpus.from_texts(["The museum was opened by the mayor."])
        >>> negation(c.sentences()[0], c, random.Random(0)).claim
        'The museum was not opened by the mayor.'
    """
    text = s.text
    never = re.search(r"\bnever\s+", text)
    if never:
        claim = text[: never.start()] + text[never.end() :]
        return _pair(s, corpus, claim, "refuted", "negation")
    m = _NEGATED.search(text)
    if m:
        verb = m.group(1)
        keep = {"does": "", "do": "", "did": ""}.get(verb, verb + " ")
        claim = text[: m.start()] + keep + text[m.end() :]
        if not keep:  # "did not win" → "won" needs a verb form; say "did win" instead
            claim = text[: m.start()] + verb + " " + text[m.end() :]
        return _pair(s, corpus, claim, "refuted", "negation")
    m = _AUX.search(text)
    h = _HAS.search(text)
    if m and (h is None or m.start() < h.start()):
        claim = text[: m.end()] + " not" + text[m.end() :]
    elif h:
        verb = h.group(1)
        do = {"has": "does", "have": "do", "had": "did"}[verb]
        claim = text[: h.start()] + f"{do} not have " + text[h.end() :]
    else:
        return None
    return _pair(s, corpus, claim, "refuted", "negation")


# -- not enough info -----------------------------------------------------------------------------
_WORD = re.compile(r"\w+")
_CANDIDATES = 30


@register_transform("other_passage")
def other_passage(s: Sentence, corpus: Corpus, rng: random.Random) -> Transformed | None:
    """Not enough info: of a sample of sentences from other passages, the one sharing the
    most words with this passage, read against this passage.

    Example:
        >>> c = Corpus.from_texts(["Ada Lovelace wrote notes on the engine.",
        ...                        "Alan Turing wrote a paper on computable numbers."])
        >>> t = other_passage(c.sentences()[0], c, random.Random(0))
        >>> t.claim, t.label
        ('Alan Turing wrote a paper on computable numbers.', 'not_enough_info')
    """
    candidates = [
        (p, i)
        for p in range(len(corpus.passages))
        if p != s.passage
        for i in range(len(corpus.passages[p]))
    ]
    if not candidates:
        return None
    evidence = corpus.evidence(s)
    words = set(_WORD.findall(evidence.lower()))
    best, best_score = None, -1
    for p, i in rng.sample(candidates, min(_CANDIDATES, len(candidates))):
        claim = corpus.as_claim(Sentence(corpus.passages[p][i], p, i))
        if claim is None or claim.lower() in evidence.lower():
            continue
        score = len(words & set(_WORD.findall(claim.lower())))
        if score > best_score:
            best, best_score = claim, score
    if best is None:
        return None
    return Transformed(best, evidence, "not_enough_info", "other_passage", s.text)


@register_transform("sentence_removed")
def sentence_removed(s: Sentence, corpus: Corpus, rng: random.Random) -> Transformed | None:
    """Not enough info: the sentence, read against its passage with the sentence taken out
    (None when nothing else is left, or another sentence repeats it).

    Example:
        >>> c = Corpus.from_texts(["Ada Lovelace wrote notes on the engine. It was never built."])
        >>> t = sentence_removed(c.sentences()[0], c, random.Random(0))
        >>> t.claim, t.evidence
        ('Ada Lovelace wrote notes on the engine.', 'It was never built.')
    """
    evidence = corpus.evidence(s, drop=True)
    if not evidence.strip() or s.text.lower() in evidence.lower():
        return None
    return Transformed(s.text, evidence, "not_enough_info", "sentence_removed", s.text)


# -- building pairs ------------------------------------------------------------------------------
def transform_pairs(
    corpus: Corpus,
    *,
    transforms: Sequence[str] | None = None,
    max_sentences: int = 2000,
    per_sentence: int = 2,
    seed: int = 0,
) -> list[Transformed]:
    """Training pairs from the corpus's sentences, each from one or more transformations.

    Sentences are sampled (``max_sentences`` at most); each gets up to ``per_sentence``
    transformations drawn at random among those that apply, so labels come out in the
    proportions the text allows (balance them afterwards).

    Args:
        corpus: the passages (:meth:`Corpus.from_texts`).
        transforms: names from :data:`TRANSFORMS` (default: all).
        max_sentences: sentences used at most.
        per_sentence: transformations per sentence at most.
        seed: seed of the sampling and of each transformation's choices.

    Raises:
        ValueError: an unknown transformation name, or ``per_sentence`` < 1.

    Example:
        >>> c = Corpus.from_texts(["In 2006, Ada Lovelace won the prize in Paris."])
        >>> sorted({t.label for t in transform_pairs(c, per_sentence=7)})
        ['refuted', 'supported']
    """
    names = list(transforms) if transforms is not None else list(TRANSFORMS)
    unknown = [n for n in names if n not in TRANSFORMS]
    if unknown:
        raise ValueError(f"`transforms` names {unknown}; registered: {sorted(TRANSFORMS)}")
    if per_sentence < 1:
        raise ValueError(f"`per_sentence` must be >= 1, got {per_sentence}")
    rng = random.Random(f"transforms:{seed}")
    sentences = corpus.sentences()
    if len(sentences) > max_sentences:
        sentences = rng.sample(sentences, max_sentences)
    out: list[Transformed] = []
    for s in sentences:
        order = rng.sample(names, len(names))
        made = 0
        for name in order:
            t = TRANSFORMS[name](s, corpus, rng)
            if t is not None:
                out.append(t)
                made += 1
                if made == per_sentence:
                    break
    return out


def read_texts(path: str | Path) -> list[str]:
    """Passages from a file or a folder of files: paragraphs (blank-line separated) of
    ``.txt``/``.md`` files, and ``text`` (or ``passage``, ``document``) of ``.jsonl`` lines.

    Raises:
        FileNotFoundError: ``path`` does not exist, or a folder holds no such file.
        kg.SourceFileError: bad JSONL lines or undecodable text, each named by file and line.
    """
    from kg import SourceFileError
    from kg.loaders import decoded_lines, jsonl_objects

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"`documents` {str(path)!r} does not exist")
    suffixes = (".txt", ".md", ".text", ".jsonl")
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in suffixes and p.is_file())
    files = [path] if path.is_file() else files
    if not files:
        raise FileNotFoundError(
            f"`documents` folder {path} holds no {', '.join(suffixes)} file; give a file or a "
            "folder of text files"
        )
    texts: list[str] = []
    for f in files:
        errors: list[tuple[str, int, str]] = []
        if f.suffix.lower() == ".jsonl":
            for n, obj in jsonl_objects(f, errors):
                text = next(
                    (
                        obj[k]
                        for k in ("text", "passage", "document")
                        if isinstance(obj.get(k), str)
                    ),
                    None,
                )
                if text is None:
                    errors.append(
                        (
                            str(f),
                            n,
                            f"no `text` (or `passage`, `document`) string; has {sorted(obj)}",
                        )
                    )
                else:
                    texts.append(text)
        else:
            paragraph: list[str] = []
            for _, line in [*decoded_lines(f, errors), (0, "")]:
                if line.strip():
                    paragraph.append(line.strip())
                elif paragraph:
                    texts.append(" ".join(paragraph))
                    paragraph = []
        if errors:
            raise SourceFileError(errors)
    return texts


def rows(pairs: Sequence[Transformed]) -> list[dict[str, Any]]:
    """Transformed pairs as training rows (``claim``, ``evidence``, ``label``, ``kind``)."""
    return [
        {"claim": t.claim, "evidence": t.evidence, "label": t.label, "kind": t.kind} for t in pairs
    ]
