"""Reading items: evidence about *made-up* entities, a question, and the answer in the evidence.

A small base model answers from what it memorized; the only way to answer a question about
an invented entity is to read the evidence. Reading items teach that skill without stating
a single fact about a real entity (the objects are real object strings of each relation, so
every kind of answer the model will meet is copied at least once). They serve twice:

- as pretraining text (:func:`grounded.pretrain.corpus.reading_documents`), and
- as fine-tuning examples mixed into the seen pairs' (``grounded train --reading-examples``),
  in the spirit of KAFT's counterfactual contexts (Li et al., 2022): with the answer lines
  first as a retriever ranks them (``gold_first``), and with unanswerable items whose
  evidence says nothing of the pair asked (``p_unanswerable``, target the abstention phrase
  :data:`grounded.answers.ABSTAIN`).

Names repeat across items with other facts each time, on purpose: an answer can only be read,
never remembered. No torch here.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from kg import KnowledgeGraph, Relation

__all__ = ["ReadingItem", "question_templates", "reading_items", "relation_label"]

# Syllables of made-up reading entities: disjoint from those of the evaluation's made-up
# out-of-KB subjects (grounded.data.groups), so no out-of-KB name is ever read in training.
_READING_SYLLABLES = (
    "ab cor dex fim gon hul iks jor kel lum mox nir opa pim qua rul sen tok umb vor wix yal zeb"
).split()


@dataclass(frozen=True)
class ReadingItem:
    """One reading item: ``objects`` is empty when the evidence does not answer."""

    question: str
    evidence: list[str]
    objects: list[str]
    subject: str
    relation: str


def relation_label(relation: Relation) -> str:
    """A relation's name as words: ``official_language`` -> ``official language``."""
    return relation.name.replace("_", " ")


def question_templates(relation: Relation) -> list[str]:
    """The relation's question templates, or a generic one if the schema gives none."""
    return list(relation.questions) or [f"What is the {relation_label(relation)} of {{subject}}?"]


def _made_up_name(rng: random.Random, real: set[str], avoid: tuple[str, ...] = ()) -> str:
    """A made-up entity name: never a real entity's, and none of ``avoid``."""
    while True:
        name = "".join(rng.choice(_READING_SYLLABLES) for _ in range(rng.randint(2, 3)))
        name = name.capitalize()
        if name.lower() not in real and name not in avoid:
            return name


def reading_items(
    graph: KnowledgeGraph,
    n: int,
    *,
    seed: int,
    k: int = 5,
    gold_first: float = 0.0,
    p_unanswerable: float = 0.0,
) -> list[ReadingItem]:
    """``n`` reading items about made-up entities.

    Distractor lines are other facts of the same made-up entity and the same relation of
    another made-up entity, as retrieval returns them.

    Args:
        graph: the knowledge graph (relations, templates, object strings).
        n: items to write (0: none).
        seed: seed of every choice.
        k: evidence lines per item.
        gold_first: probability that the answer lines come first (the order of a retriever
            that ranks the gold fact on top); otherwise every line is shuffled.
        p_unanswerable: share of items whose evidence does not answer: the answer lines are
            dropped (half the time the question then asks about an entity the evidence never
            names), and the target is the abstention phrase.

    Raises:
        ValueError: a probability is outside [0, 1].

    Example:
        >>> from kg import Schema, Triple
        >>> rel = Relation("capital", "The capital of {subject} is {object}.",
        ...                ["What is the capital of {subject}?"])
        >>> g = KnowledgeGraph([Triple("Mongolia", "capital", "Ulaanbaatar")], Schema([rel]))
        >>> item = reading_items(g, 1, seed=0, k=2)[0]
        >>> item.objects, item.question.startswith("What is the capital of")
        (['Ulaanbaatar'], True)
    """
    for name, p in (("gold_first", gold_first), ("p_unanswerable", p_unanswerable)):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"`{name}` must be in [0, 1], got {p}")
    if n <= 0:
        return []
    pools: dict[str, list[str]] = {}
    sizes: dict[str, list[int]] = {}
    for t in graph.triples():
        pools.setdefault(t.relation, []).append(t.object)
    for rel_name in pools:
        pools[rel_name] = sorted(set(pools[rel_name]))
        counts: dict[str, int] = {}
        for t in graph.triples():
            if t.relation == rel_name:
                counts[t.subject] = counts.get(t.subject, 0) + 1
        sizes[rel_name] = sorted(counts.values())
    asked = [r for r in graph.schema if r.name in pools]
    if not asked:
        return []
    rng = random.Random(f"grounded-reading-{seed}")
    real = {e.lower() for e in graph.entities}
    items = []
    for _ in range(n):
        rel = rng.choice(asked)
        subject = _made_up_name(rng, real)
        other = _made_up_name(rng, real, avoid=(subject,))

        def objects(r: Relation) -> list[str]:
            m = min(rng.choice(sizes[r.name]), 3, len(pools[r.name]))
            return rng.sample(pools[r.name], m)

        answer = objects(rel)
        gold = [rel.statement(subject, o) for o in answer]
        lines = [*gold, rel.statement(other, rng.choice(pools[rel.name]))]
        others = [r for r in asked if r.name != rel.name]
        while len(lines) < k and others:
            r = rng.choice(others)
            lines.append(r.statement(rng.choice((subject, subject, other)), objects(r)[0]))
        lines = lines[: max(k, len(answer))]
        rng.shuffle(lines)
        # Extra draws only when asked for, so the default items stay what they were.
        if p_unanswerable and rng.random() < p_unanswerable:
            lines = [line for line in lines if line not in gold]
            while len(lines) < k:
                lines.append(rel.statement(other, rng.choice(pools[rel.name])))
            if rng.random() < 0.5:
                subject = _made_up_name(rng, real, avoid=(subject, other))
            answer, gold = [], []
        if gold_first and gold and rng.random() < gold_first:
            lines = gold + [line for line in lines if line not in gold]
        templates = question_templates(rel)
        question = templates[rng.randrange(len(templates)) if rel.questions else 0]
        items.append(
            ReadingItem(question.format(subject=subject), lines, answer, subject, rel.name)
        )
    return items


# -- domain-agnostic reading items (the reader's pretraining data) ------------------------------
# Nothing below reads a knowledge graph: entities, relations and phrasings are generated, so a
# reader pretrained on them is tuned to no domain. Each pool is split in two: training draws
# from the first part only, held-out items (``held_out=True``, the reading probe) from the
# second, so the probe measures reading of relations and phrasings never seen in training.

_ONSETS = "b c d f g h j k l m n p r s t v w z br dr fr gr kr pl st sh th tr".split()
_VOWELS = "a e i o u ai ea ou".split()
_CODAS = ["", "", "", "n", "r", "l", "s", "m", "k"]

# Relation nouns: (training, held-out). Generic English, no domain.
_NOUNS = (
    "capital colour color founder leader language currency motto anthem author owner mayor "
    "director symbol emblem partner rival neighbour ally sponsor mentor teacher student "
    "brother sister father mother spouse child pet home birthplace hometown address "
    "employer school team coach captain manager editor publisher producer composer "
    "designer builder architect inventor painter singer writer genre style material "
    "flavour shape size weight height length width age price value rank score grade "
    "title nickname code password key number label brand model version origin source "
    "destination goal target sport hobby instrument weapon vehicle tool recipe dish "
    "drink fruit flower tree animal mascot planet moon river lake mountain island "
    "harbour port bridge tower street district region province county village city "
    "country continent ocean climate season festival holiday religion religion "
    "president chairman founding_year population area elevation depth speed"
).split()
_NOUNS_HELD_OUT = (
    "guardian herald patron steward custodian treasurer curator keeper warden envoy "
    "banner crest insignia seal charter creed dialect script currency_sign landmark "
    "headquarters workshop archive vault garden orchard quarry harvest cargo fleet"
).split()
# Verb relations: (third person, base form).
_VERBS = [
    (v + "s", v)
    for v in (
        "border own speak export import use visit like produce follow support love hate "
        "fear trust know build sell buy grow teach study play sing paint write read "
        "watch guard rule serve feed carry"
    ).split()
]
_VERBS_HELD_OUT = [
    (v + "s", v)
    for v in "admire protect inherit harvest mine forge shelter sponsor mentor rescue".split()
]
_WORDS = (
    "red blue green yellow black white silver golden iron stone wood glass paper salt "
    "sugar water fire wind snow rain sun star cloud river sea sand rock bread milk tea "
    "coffee apple lemon olive rose lily oak pine maple wolf bear fox eagle owl horse "
    "cat dog fish lion tiger whale shark crow swan north south east west spring summer "
    "autumn winter morning evening night silk wool cotton copper tin amber jade pearl"
).split()
# Well-known names of every domain: evidence about them is counterfactual, so only reading
# answers (KAFT). For a reader trained from scratch they are just names.
_FAMOUS = (
    "Einstein;Mozart;Shakespeare;Napoleon;Cleopatra;Newton;Picasso;Darwin;Gandhi;Tokyo;"
    "Paris;London;Cairo;Sydney;Everest;Sahara;Amazon;Nile;Jupiter;Mars;Venus;Saturn;"
    "Oxygen;Helium;Gold;Carbon;Python;Linux;Toyota;Boeing;Beethoven;Aristotle;Plato;"
    "Galileo;Tesla;Curie;Da Vinci;Rembrandt;Homer;Confucius;Socrates;Antarctica;Pacific;"
    "Atlantic;Danube;Rhine;Alps;Andes;Himalaya;Berlin;Rome;Madrid;Lisbon;Vienna;Oslo"
).split(";")

# Phrasings: {s} subject, {r} relation noun, {o} object; (training, held-out).
_NOUN_STATEMENTS = (
    "The {r} of {s} is {o}.",
    "{s}'s {r} is {o}.",
    "{o} is the {r} of {s}.",
    "{s} has {o} as its {r}.",
    "The {r} of {s}: {o}.",
    "For {s}, the {r} is {o}.",
    "{s} | {r}: {o}.",
    "{R} of {s}: {o}.",
)
_NOUN_STATEMENTS_HELD_OUT = (
    "In {s}, the {r} is {o}.",
    "The {r} recorded for {s} is {o}.",
    "{s} lists {o} as its {r}.",
)
_NOUN_QUESTIONS = (
    "What is the {r} of {s}?",
    "What is {s}'s {r}?",
    "Which {r} does {s} have?",
    "Name the {r} of {s}.",
    "Give the {r} of {s}.",
    "{s}: what is its {r}?",
)
_NOUN_QUESTIONS_HELD_OUT = (
    "Tell me the {r} of {s}.",
    "Do you know the {r} of {s}?",
)
_VERB_STATEMENTS = ("{s} {v} {o}.", "It is known that {s} {v} {o}.", "{s} {v} {o}, it is said.")
_VERB_STATEMENTS_HELD_OUT = ("Records show that {s} {v} {o}.",)
_VERB_QUESTIONS = ("What does {s} {b}?", "Which one does {s} {b}?", "Whom or what does {s} {b}?")
_VERB_QUESTIONS_HELD_OUT = ("Tell me what {s} does {b}.",)


@dataclass(frozen=True)
class _Rel:
    """A generated relation: a noun (``the colour of X``) or a verb (``X owns Y``)."""

    word: str
    base: str | None = None  # the verb's base form; None for a noun

    def statement(self, rng: random.Random, patterns: tuple[str, ...], s: str, o: str) -> str:
        p = rng.choice(patterns)
        if self.base is None:
            return p.format(s=s, r=self.word, R=self.word[:1].upper() + self.word[1:], o=o)
        return p.format(s=s, v=self.word, o=o)

    def question(self, rng: random.Random, patterns: tuple[str, ...], s: str) -> str:
        p = rng.choice(patterns)
        if self.base is None:
            return p.format(s=s, r=self.word)
        return p.format(s=s, b=self.base)


class _Pools:
    """The word pools and phrasings of one side (training or held-out)."""

    def __init__(self, held_out: bool, p_made_up: float | None = None) -> None:
        self.held_out = held_out
        # Share of relations that are made-up words. None: the measured mix (35%, drawn
        # as before); the held-out side (the probe) always keeps it, so its items and
        # scores stay comparable across routes.
        self.p_made_up = None if held_out else p_made_up
        self.nouns = _NOUNS_HELD_OUT if held_out else _NOUNS
        self.verbs = _VERBS_HELD_OUT if held_out else _VERBS
        self.noun_statements = _NOUN_STATEMENTS_HELD_OUT if held_out else _NOUN_STATEMENTS
        self.noun_questions = _NOUN_QUESTIONS_HELD_OUT if held_out else _NOUN_QUESTIONS
        self.verb_statements = _VERB_STATEMENTS_HELD_OUT if held_out else _VERB_STATEMENTS
        self.verb_questions = _VERB_QUESTIONS_HELD_OUT if held_out else _VERB_QUESTIONS
        # Made-up words of each side end differently, so the two sides never share one.
        self.made_up_end = ("ex", "ost", "ir") if held_out else ("el", "an", "ory", "ith", "")

    def syllable(self, rng: random.Random) -> str:
        return rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS)

    def name(self, rng: random.Random) -> str:
        """A made-up proper name of one or two words (``Brailok``, ``Tou Shandeth``)."""
        word = "".join(self.syllable(rng) for _ in range(rng.randint(2, 3))).capitalize()
        if rng.random() < 0.15:
            word += " " + "".join(self.syllable(rng) for _ in range(2)).capitalize()
        return word

    def made_up_word(self, rng: random.Random) -> str:
        return self.syllable(rng) + self.syllable(rng) + rng.choice(self.made_up_end)

    def relation(self, rng: random.Random) -> _Rel:
        # Nouns are 70% of relations, verbs 30%; 35% of each made up, or `p_made_up`.
        if self.p_made_up is None:
            x = rng.random()
            if x < 0.45:
                return _Rel(rng.choice(self.nouns).replace("_", " "))
            if x < 0.7:
                return _Rel(self.made_up_word(rng))
            if x < 0.9:
                third, base = rng.choice(self.verbs)
                return _Rel(third, base)
            base = self.made_up_word(rng)
            return _Rel(base + "s", base)
        noun = rng.random() < 0.7
        if rng.random() >= self.p_made_up:
            if noun:
                return _Rel(rng.choice(self.nouns).replace("_", " "))
            third, base = rng.choice(self.verbs)
            return _Rel(third, base)
        word = self.made_up_word(rng)
        return _Rel(word) if noun else _Rel(word + "s", word)

    def subject(self, rng: random.Random, p_famous: float) -> str:
        return rng.choice(_FAMOUS) if rng.random() < p_famous else self.name(rng)

    def object(self, rng: random.Random) -> str:
        x = rng.random()
        if x < 0.5:
            return self.name(rng)
        if x < 0.65:
            return str(rng.randint(0, 9999))
        if x < 0.85:
            return rng.choice(_WORDS)
        return self.made_up_word(rng)

    def statement(self, rng: random.Random, rel: _Rel, s: str, o: str) -> str:
        patterns = self.noun_statements if rel.base is None else self.verb_statements
        return rel.statement(rng, patterns, s, o)

    def question(self, rng: random.Random, rel: _Rel, s: str) -> str:
        patterns = self.noun_questions if rel.base is None else self.verb_questions
        return rel.question(rng, patterns, s)


def _distinct(rng: random.Random, make, avoid: set) -> Any:  # noqa: ANN001
    """``make(rng)`` drawn again until it is none of ``avoid`` (which it then joins)."""
    while True:
        x = make(rng)
        key = x.word if isinstance(x, _Rel) else x
        if key not in avoid:
            avoid.add(key)
            return x


def synthetic_reading_item(
    rng: random.Random,
    lines: int,
    *,
    unanswerable: str | None = None,
    held_out: bool = False,
    p_famous: float = 0.1,
    p_multi: float = 0.0,
    gold_position: int | None = None,
    p_made_up: float | None = None,
) -> ReadingItem:
    """One domain-agnostic reading item with ``lines`` evidence lines.

    The evidence holds the gold line(s) (the subject asked, the relation asked, the answer)
    and distractors: the same relation of other subjects, other relations of the same
    subject, and unrelated facts, in random order (or the gold line at ``gold_position``).

    Args:
        rng: the source of every choice.
        lines: evidence lines (>= 1).
        unanswerable: None for an answerable item; ``"subject"``: the question asks about a
            subject the evidence never names; ``"relation"``: the evidence names the subject
            but never with the relation asked. The target is then the abstention phrase.
        held_out: draw relations and phrasings from the held-out pools (the probe's).
        p_famous: probability that a subject is a well-known name (counterfactual evidence).
        p_multi: probability of two or three answer lines (a many-valued relation).
        gold_position: index of the (first) gold line; None: anywhere.
        p_made_up: share of made-up relation words on the training side (None: 0.35). A
            relation the model has seen before must carry no signal: with few made-up
            relations a reader learns to abstain on any unfamiliar relation (README, R4).

    Raises:
        ValueError: ``lines`` < 1, or ``unanswerable`` is not None, "subject" or "relation".
    """
    if lines < 1:
        raise ValueError(f"`lines` must be >= 1, got {lines}")
    if unanswerable not in (None, "subject", "relation"):
        raise ValueError(
            f"`unanswerable` must be None, 'subject' or 'relation', got {unanswerable!r}"
        )
    pools = _Pools(held_out, p_made_up)
    names: set = set()
    words: set = set()
    subject = _distinct(rng, lambda r: pools.subject(r, p_famous), names)
    rel = _distinct(rng, pools.relation, words)
    n_gold = 1 if unanswerable or rng.random() >= p_multi else rng.randint(2, 3)
    n_gold = min(n_gold, lines)
    objects = [_distinct(rng, pools.object, set()) for _ in range(n_gold)]
    objects = list(dict.fromkeys(objects))
    gold = [pools.statement(rng, rel, subject, o) for o in objects]
    others = [_distinct(rng, pools.relation, words) for _ in range(3)]
    distractors: list[str] = []
    for i in range(lines - len(gold) + (len(gold) if unanswerable else 0)):
        kind = i % 3 if i < 3 else rng.randrange(3)
        if unanswerable == "relation" and kind == 0:
            kind = 1  # keep the subject present, never with the asked relation
        if unanswerable == "subject" and kind == 1:
            kind = 0
        s = subject if kind == 1 else _distinct(rng, lambda r: pools.subject(r, p_famous), names)
        r = rel if kind == 0 else rng.choice(others)
        distractors.append(pools.statement(rng, r, s, pools.object(rng)))
    if unanswerable == "relation" and lines and subject not in " ".join(distractors):
        distractors[0] = pools.statement(rng, others[0], subject, pools.object(rng))
    rng.shuffle(distractors)
    if unanswerable:
        evidence = distractors
        if unanswerable == "subject":
            subject = _distinct(rng, lambda r: pools.subject(r, 0.0), names)
        objects = []
    else:
        pos = rng.randint(0, len(distractors)) if gold_position is None else gold_position
        evidence = distractors[:pos] + gold + distractors[pos:]
    question = pools.question(rng, rel, subject)
    return ReadingItem(question, evidence, objects, subject, rel.word)


def synthetic_reading_items(
    n: int,
    *,
    seed: int,
    max_lines: int = 5,
    min_lines: int = 1,
    p_unanswerable: float = 0.2,
    p_famous: float = 0.1,
    p_multi: float = 0.1,
    held_out: bool = False,
) -> list[ReadingItem]:
    """``n`` domain-agnostic reading items, 1 to ``max_lines`` evidence lines each.

    Every entity, relation and phrasing is generated (see :func:`synthetic_reading_item`);
    ``p_unanswerable`` of the items are unanswerable, half lacking the subject asked and half
    the relation. The same ``seed`` gives the same items.

    Raises:
        ValueError: ``min_lines`` < 1 or > ``max_lines``, or a probability outside [0, 1].

    Example:
        >>> items = synthetic_reading_items(3, seed=0, p_unanswerable=0.0)
        >>> all(it.objects and any(it.objects[0] in line for line in it.evidence)
        ...     for it in items)
        True
    """
    if not 1 <= min_lines <= max_lines:
        raise ValueError(
            f"`min_lines` ({min_lines}) and `max_lines` ({max_lines}) must satisfy "
            "1 <= min_lines <= max_lines"
        )
    for name, p in (
        ("p_unanswerable", p_unanswerable),
        ("p_famous", p_famous),
        ("p_multi", p_multi),
    ):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"`{name}` must be in [0, 1], got {p}")
    rng = random.Random(f"grounded-synthetic-reading-{seed}-{held_out}")
    items = []
    for _ in range(n):
        lines = rng.randint(min_lines, max_lines)
        kind = None
        if rng.random() < p_unanswerable:
            kind = rng.choice(("subject", "relation"))
        items.append(
            synthetic_reading_item(
                rng,
                lines,
                unanswerable=kind,
                held_out=held_out,
                p_famous=p_famous,
                p_multi=p_multi,
            )
        )
    return items


_ENGLISH = (
    "the of and to a in is it you that he was for on are with as I his they be at one have "
    "this from or had by not word but what some we can out other were all there when up use "
    "your how said an each she which do their time if will way about many then them write "
    "would like so these her long make thing see him two has look more day could go come did "
    "number sound no most people my over know water than call first who may down side been "
    "now find any new work part take get place made live where after back little only round "
    "man year came show every good me give our under name very through just form sentence "
    "great think say help low line differ turn cause much mean before move right boy old too "
    "same tell does set three want air well also play small end put home read hand port "
    "large spell add even land here must big high such follow act why ask men change went "
    "light kind off need house picture try us again animal point mother world near build "
    "self earth father head stand own page should country found answer school grow study "
    "still learn plant cover food sun four between state keep eye never last let thought "
    "city tree cross farm hard start might story saw far sea draw left late run while press "
    "close night real life few north open seem together next white children begin got walk "
    "example ease paper group always music those both mark often letter until mile river "
    "car feet care second book carry took science eat room friend began idea fish mountain "
    "stop once base hear horse cut sure watch color face wood main enough plain girl usual "
    "young ready above ever red list though feel talk bird soon body dog family direct pose "
    "leave song measure door product black short numeral class wind question happen complete "
    "ship area half rock order fire south problem piece told knew pass since top whole king "
    "space heard best hour better true during hundred five remember step early hold west "
    "ground interest reach fast verb sing listen six table travel less morning ten simple "
    "several vowel toward war lay against pattern slow center love person money serve "
    "appear road map rain rule govern pull cold notice voice unit power town fine certain "
    "fly fall lead cry dark machine note wait plan figure star box noun field rest correct "
    "able pound done beauty drive stood contain front teach week final gave green oh quick "
    "develop ocean warm free minute strong special mind behind clear tail produce fact "
    "street inch multiply nothing course stay wheel full force blue object decide surface "
    "deep moon island foot system busy test record boat common gold possible plane stead "
    "dry wonder laugh thousand ago ran check game shape equate hot miss brought heat snow "
    "tire bring yes distant fill east paint language among capital population located born "
    "known called named official borders written founded member part of located in"
).split()


def generic_english() -> list[str]:
    """Plain English texts for a tokenizer: common words, alone and in running text.

    Byte-level BPE learns its merges from these, so a user's own text later splits into
    whole common words rather than bytes. Fixed (no randomness).
    """
    words = list(dict.fromkeys(_ENGLISH))
    texts = [w for w in words] + [" " + w for w in words] + [w.capitalize() for w in words]
    texts += [" ".join(words[i : i + 12]) + "." for i in range(0, len(words), 12)]
    return texts
