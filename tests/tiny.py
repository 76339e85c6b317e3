"""A 20-entity knowledge base written by hand, shared by the tests."""

from __future__ import annotations

from kg import KnowledgeSource, Passage, Relation, Schema, Triple

SCHEMA = Schema(
    [
        Relation(
            "capital",
            "The capital of {subject} is {object}.",
            ["What is the capital of {subject}?"],
            functional=True,
        ),
        Relation("region", "{subject} is in {object}.", ["Where is {subject}?"]),
        Relation(
            "language",
            "{object} is spoken in {subject}.",
            ["Which languages are spoken in {subject}?"],
            functional=False,
            plural_template="The languages of {subject} are {objects}.",
        ),
        Relation(
            "borders",
            "{subject} borders {object}.",
            ["Which countries border {subject}?"],
            functional=False,
            closed=True,
        ),
    ]
)

FACTS = [
    ("Mongolia", "capital", "Ulaanbaatar"),
    ("Mongolia", "region", "Asia"),
    ("Mongolia", "language", "Mongolian"),
    ("Mongolia", "borders", "China"),
    ("Mongolia", "borders", "Russia"),
    ("China", "capital", "Beijing"),
    ("China", "borders", "Mongolia"),
    ("China", "region", "Asia"),
    ("Russia", "capital", "Moscow"),
    ("Russia", "borders", "Mongolia"),
    ("Russia", "region", "Europe"),
    ("South Africa", "capital", "Pretoria"),
    ("South Africa", "capital", "Cape Town"),
    ("South Africa", "capital", "Bloemfontein"),
    ("South Africa", "language", "Zulu"),
    ("South Africa", "language", "English"),
    ("Switzerland", "capital", "Bern"),
    ("Switzerland", "language", "German"),
    ("Côte d'Ivoire", "capital", "Yamoussoukro"),
    ("The Gambia", "capital", "Banjul"),
    ("Mexico", "capital", "Mexico City"),
    ("Australia", "capital", "Canberra"),
]
ALIASES = {
    "Ulaanbaatar": ["Ulan Bator"],
    "Côte d'Ivoire": ["Ivory Coast"],
    "Mexico (Philippines)": ["Mexico"],
    "Switzerland": ["Swiss Confederation"],
}

PASSAGES = [
    Passage(
        "mongolia-1",
        "Mongolia is a landlocked country between China and Russia, with a nomadic tradition.",
        ("Mongolia",),
    ),
    Passage(
        "swiss-1", "Switzerland has four national languages and a federal system.", ("Switzerland",)
    ),
]


def tiny_source() -> KnowledgeSource:
    """The tiny KB as a :class:`KnowledgeSource` (a fresh copy each call)."""
    return KnowledgeSource(
        [Triple(*f) for f in FACTS],
        SCHEMA,
        {k: list(v) for k, v in ALIASES.items()},
        list(PASSAGES),
        name="tiny",
    )
