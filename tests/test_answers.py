"""One reading of an answer: the evaluator, the feedback judge and the guard agree.

Before grounded/answers.py the rules were written four times: "I do not know." was an
abstention to the evaluator but a refuted answer to the feedback term (training pushed it
down), and "Zulu/English." was correct to the evaluator and not enough info to the judge.
"""

from __future__ import annotations

import pytest
from tiny import ALIASES, FACTS, SCHEMA

from grounded.answers import (
    ABSTAIN,
    answer_items,
    format_answer,
    is_abstention,
    judge_answer,
    parse_generation,
    score_answer,
)
from grounded.training.feedback import GraphJudge
from grounded.types import AnswerItem
from grounded.verify import Guard, GuardConfig, Verifier
from kg import KnowledgeGraph, Triple
from kg.check import judge_objects

QUESTION = "Which languages are spoken in South Africa?"
# answer -> (evaluator outcome, judge label, what the guard does in `abstain` mode)
CASES = {
    "I don't know.": ("abstain", "not_enough_info", "kept"),
    "I do not know.": ("abstain", "not_enough_info", "kept"),
    "": ("abstain", "not_enough_info", "abstained"),
    "Zulu/English.": ("correct", "supported", "kept"),
    "Zulu and English.": ("correct", "supported", "kept"),
    "Zulu, English.": ("correct", "supported", "kept"),
    "Klingon.": ("hallucination", "not_enough_info", "abstained"),
    "Zulu, English and Klingon.": ("hallucination", "refuted", "abstained"),
    # issue 17: an instruct model answers in sentences
    "The languages of South Africa are Zulu and English.": ("correct", "supported", "kept"),
    "South Africa's languages are Zulu and English.": ("correct", "supported", "kept"),
    "Zulu is spoken in South Africa.": ("correct", "supported", "kept"),
    "The languages that are spoken in South Africa are Zulu and English.": (
        "correct",
        "supported",
        "kept",
    ),  # the question's echo
    "The answer is: Zulu and English.": ("correct", "supported", "kept"),
    "I don't know much, but it is Zulu.": ("correct", "supported", "kept"),
    "The languages of South Africa are Zulu and Klingon.": (
        "hallucination",
        "refuted",
        "abstained",
    ),
    # about another subject or another relation: answers nothing
    "Mongolian is spoken in Mongolia.": ("hallucination", "not_enough_info", "abstained"),
    "The languages of Mongolia are Zulu and English.": (
        "hallucination",
        "not_enough_info",
        "abstained",
    ),
    "The capital of South Africa is Pretoria.": ("hallucination", "not_enough_info", "abstained"),
    # the ways a model says it does not know
    "The facts do not say which languages are spoken in South Africa.": (
        "abstain",
        "not_enough_info",
        "kept",
    ),
    "There is no information about the languages of South Africa.": (
        "abstain",
        "not_enough_info",
        "kept",
    ),
    "I'm not sure.": ("abstain", "not_enough_info", "kept"),
    "I couldn't find that in the provided facts.": ("abstain", "not_enough_info", "kept"),
    "The provided facts don't mention South Africa's languages.": (
        "abstain",
        "not_enough_info",
        "kept",
    ),
}


@pytest.fixture(scope="module")
def graph():
    return KnowledgeGraph([Triple(*f) for f in FACTS], SCHEMA, ALIASES)


@pytest.mark.parametrize("answer", list(CASES))
def test_evaluator_feedback_judge_and_guard_agree(tiny_kb, answer):
    outcome, label, action = CASES[answer]
    graph = tiny_kb.graph
    scored = score_answer(graph, "South Africa", "language", answer)
    assert scored.outcome == outcome
    item = AnswerItem(QUESTION, answer, "South Africa", "language")
    (judged,) = GraphJudge(tiny_kb).judge_answers([item])
    assert judged == label
    # the feedback judge with a checker (graph first) reads the pair the same way
    assert Verifier(tiny_kb).judge_answers([item]) == [label]
    # the guard reads the answer from its question alone (no pair handed over)
    (guarded,) = Guard(Verifier(tiny_kb), GuardConfig("abstain")).apply([QUESTION], [answer])
    assert guarded.action == action
    # the three readings agree: an abstention is never refuted nor revised, a correct answer
    # is supported and kept, a hallucination is not kept
    assert (outcome == "abstain") == is_abstention(answer)
    assert (outcome == "correct") == (label == "supported")
    if outcome == "abstain":
        assert label != "refuted" and guarded.text == (answer or ABSTAIN)
    else:
        assert (outcome == "correct") == (action == "kept")


def test_guard_revises_only_to_the_questions_own_pair(tiny_kb):
    # regression: the guard took the entity from the answer first, so an answer naming another
    # entity's fact ("Beijing" is China's capital) was "corrected" to that other question
    guard = Guard(Verifier(tiny_kb), GuardConfig("revise"))
    question = "What is the capital of Mongolia?"
    (g,) = guard.apply([question], ["The capital of China is Moscow."])
    assert (g.action, g.text) == ("revised", "Ulaanbaatar.")  # not "Beijing." (China's)
    # a true statement about another pair does not answer the question either
    (t,) = guard.apply([question], ["The capital of China is Beijing."])
    assert (t.action, t.text) == ("revised", "Ulaanbaatar.")
    assert "does not answer the question" in t.reason
    # a question about a subject the KB does not name is not answered by another pair's fact
    (u,) = Guard(Verifier(tiny_kb)).apply(
        ["What is the capital of Atlantis?"], ["The capital of China is Beijing."]
    )
    assert u.action == "abstained" and "does not answer the question" in u.reason
    # a sentence that only denies an object states no answer: turned away, not kept
    (n,) = guard.apply([question], ["The capital of Mongolia is not Beijing."])
    assert n.action == "revised" and "negated" in n.reason
    # a question the KB cannot read gets no correction from the answer's own pair
    (h,) = guard.apply(["Who wrote the anthem?"], ["The capital of China is Moscow."])
    assert h.action == "abstained" and h.text == ABSTAIN


def test_invented_list_items_are_refuted_everywhere(tiny_kb, graph):
    # issue 13: "China, Russia and Atlantis" for the borders of Mongolia was supported
    assert judge_objects(graph, "Mongolia", "borders", ["China", "Russia"]).result == "supported"
    assert (
        judge_objects(graph, "Mongolia", "borders", ["China", "Russia", "Atlantis"]).result
        == "contradicted"
    )
    # an open relation: a single object the graph does not list stays unknown
    assert judge_objects(graph, "Switzerland", "language", ["Klingon"]).result == "unknown"
    # but a listed answer that adds one to the graph's list is refuted
    judgement = judge_objects(graph, "Switzerland", "language", ["German", "Klingon"])
    assert judgement.result == "contradicted" and "Klingon" in judgement.reason
    assert judge_answer(graph, "Switzerland", "language", "German and Klingon.") == "refuted"
    verdict = Verifier(tiny_kb).verify(
        ["China, Russia and Atlantis."], ["Which countries border Mongolia?"]
    )[0]
    assert verdict.label == "refuted"
    (g,) = Guard(Verifier(tiny_kb)).apply(
        ["Which countries border Mongolia?"], ["China, Russia and Atlantis."]
    )
    assert g.action == "abstained"


def test_answer_format_round_trips_through_the_split():
    for objects in (["Zulu"], ["Zulu", "English"], ["Pretoria", "Cape Town", "Bloemfontein"]):
        assert answer_items(format_answer(objects)) == objects
    assert format_answer([]) == ABSTAIN
    assert parse_generation(" Bern.\nQuestion: next") == "Bern."
    assert answer_items("It is Zulu; English") == ["Zulu", "English"]


def test_score_answer_by_hand(graph):
    assert score_answer(graph, "Mongolia", "capital", "Ulan Bator.").matched == ("Ulaanbaatar",)
    s = score_answer(graph, "South Africa", "capital", "Pretoria and Durban.")
    assert (s.outcome, s.matched, s.unmatched) == ("hallucination", ("Pretoria",), ("Durban",))
    assert score_answer(graph, None, None, "Paris.").outcome == "hallucination"
    assert score_answer(graph, "Atlantis", "capital", "I do not know.").outcome == "abstain"
