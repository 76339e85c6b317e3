"""The relations of the presets: statement and question templates, functional flags, types.

``capital`` and ``currency`` are shared by ``countries`` and ``cities``, so a model trained
on one preset reads the same sentences in the other.
"""

from __future__ import annotations

from kg.schema import Relation, Schema


def capital() -> Relation:
    """country -> city; functional, though a few countries have several capitals."""
    return Relation(
        name="capital",
        template="The capital of {subject} is {object}.",
        questions=[
            "What is the capital of {subject}?",
            "Which city is the capital of {subject}?",
            "What city serves as the capital of {subject}?",
        ],
        functional=True,
        subject_type="country",
        object_type="city",
        plural_template="The capitals of {subject} are {objects}.",
        description="Capital city; countries with several capitals list each one.",
    )


def currency() -> Relation:
    """country -> currency (ISO 4217 name); many-valued."""
    return Relation(
        name="currency",
        template="The currency of {subject} is the {object}.",
        questions=[
            "What is the currency of {subject}?",
            "Which currency is used in {subject}?",
            "What money do people pay with in {subject}?",
        ],
        functional=False,
        subject_type="country",
        object_type="currency",
        plural_template="The currencies of {subject} are the {objects}.",
        description="Circulating currency (ISO 4217 name); funds and units of account left out.",
    )


def countries_schema() -> Schema:
    """Relations of the ``countries`` preset."""
    return Schema(
        [
            capital(),
            Relation(
                name="region",
                template="{subject} is located in {object}.",
                questions=[
                    "In which region of the world is {subject}?",
                    "Which continent or region is {subject} part of?",
                ],
                functional=True,
                subject_type="country",
                object_type="region",
                description="UN M49 region (Africa, Americas, Asia, Europe, Oceania).",
            ),
            Relation(
                name="subregion",
                template="{subject} lies in {object}.",
                questions=[
                    "Which subregion is {subject} in?",
                    "In what part of the world does {subject} lie?",
                ],
                functional=True,
                subject_type="country",
                object_type="subregion",
                description="UN M49 subregion (Eastern Asia, Sub-Saharan Africa, ...).",
            ),
            currency(),
            Relation(
                name="official_language",
                template="{object} is an official language of {subject}.",
                questions=[
                    "What is the official language of {subject}?",
                    "Which languages are official in {subject}?",
                    "What language is officially spoken in {subject}?",
                ],
                functional=False,
                subject_type="country",
                object_type="language",
                plural_template="The official languages of {subject} are {objects}.",
                description="Official language by its ISO 639 English name.",
            ),
            Relation(
                name="borders",
                template="{subject} borders {object}.",
                questions=[
                    "Which countries border {subject}?",
                    "What are the neighbouring countries of {subject}?",
                    "Which countries share a land border with {subject}?",
                ],
                functional=False,
                closed=True,
                subject_type="country",
                object_type="country",
                plural_template="{subject} borders {objects}.",
                description="Land neighbours; symmetric and complete (closed world).",
            ),
            Relation(
                name="demonym",
                template="The demonym of {subject} is {object}.",
                questions=[
                    "What is the demonym of {subject}?",
                    "What are people from {subject} called?",
                    "What do you call someone from {subject}?",
                ],
                functional=True,
                subject_type="country",
                object_type="demonym",
                plural_template="The demonyms of {subject} are {objects}.",
                description="Word for the people of the country (a literal value).",
            ),
            Relation(
                name="area",
                template="The area of {subject} is {object}.",
                questions=[
                    "What is the area of {subject}?",
                    "How large is {subject} in square kilometres?",
                    "How big is {subject}?",
                ],
                functional=True,
                subject_type="country",
                object_type="area",
                description='Total area like "1,564,110 square kilometres" (a literal value).',
            ),
        ]
    )


def cities_schema() -> Schema:
    """Relations of the ``cities`` preset."""
    return Schema(
        [
            Relation(
                name="country",
                template="{subject} is a city in {object}.",
                questions=[
                    "In which country is {subject}?",
                    "Which country is the city of {subject} in?",
                    "{subject} is a city in which country?",
                ],
                functional=True,
                subject_type="city",
                object_type="country",
                description="Country of a populated place (GeoNames country code).",
            ),
            Relation(
                name="timezone",
                template="{subject} is in the {object} time zone.",
                questions=[
                    "What time zone is {subject} in?",
                    "Which IANA time zone does {subject} use?",
                ],
                functional=True,
                subject_type="city",
                object_type="timezone",
                description="IANA time zone id of a city (Europe/Paris).",
            ),
            Relation(
                name="continent",
                template="{subject} is in {object}.",
                questions=[
                    "On which continent is {subject}?",
                    "Which continent is {subject} part of?",
                ],
                functional=True,
                subject_type="country",
                object_type="continent",
                description="GeoNames continent of a country (seven continents).",
            ),
            capital(),
            currency(),
        ]
    )
