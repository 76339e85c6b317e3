"""The guard: answers verified from their question alone, then kept, revised or abstained; and
the verifier's rule for subjects the KB does not name."""

from __future__ import annotations

import numpy as np
import pytest

from grounded.answers import ABSTAIN
from grounded.factcheck.labels import Predictions
from grounded.verify import Guard, GuardConfig, Verifier, VerifierConfig


class SureChecker:
    """A checker that always says ``supported`` with probability 0.9, and records its calls."""

    def __init__(self) -> None:
        self.metadata: dict = {}
        self.calls: list[str] = []

    def predict(self, claims, evidence, *, batch_size=64, rule=None):
        self.calls += list(claims)
        return Predictions(np.array([[0.9, 0.05, 0.05]] * len(claims)), rule=rule)


CASES = [
    # question, model answer, action (abstain mode), shown (abstain), action (revise), shown
    ("What is the capital of Mongolia?", "Ulaanbaatar.", "kept", "Ulaanbaatar.", "kept",
     "Ulaanbaatar."),
    ("What is the capital of Mongolia?", "Beijing.", "abstained", ABSTAIN, "revised",
     "Ulaanbaatar."),
    ("What is the capital of Eljunlor?", "Beijing.", "abstained", ABSTAIN, "abstained", ABSTAIN),
    ("What is the capital of Mongolia?", ABSTAIN, "kept", ABSTAIN, "kept", ABSTAIN),
    ("What is the capital of Mongolia?", "  ", "abstained", ABSTAIN, "abstained", ABSTAIN),
    # unreadable: the question still says what was asked, so revise can answer it
    ("What is the capital of Mongolia?", "blue sky", "abstained", ABSTAIN, "revised",
     "Ulaanbaatar."),
    # an open many-valued relation not listing the answer: not supported; revised to the list
    ("Which languages are spoken in South Africa?", "German.", "abstained", ABSTAIN, "revised",
     "Zulu and English."),
    ("Which languages are spoken in South Africa?", "Zulu.", "kept", "Zulu.", "kept", "Zulu."),
]  # fmt: skip


@pytest.mark.parametrize(("question", "said", "act_a", "shown_a", "act_r", "shown_r"), CASES)
def test_guard_keeps_revises_or_abstains(tiny_kb, question, said, act_a, shown_a, act_r, shown_r):
    verifier = Verifier(tiny_kb)  # the graph alone: what it cannot decide is unsupported
    (a,) = Guard(verifier, GuardConfig("abstain")).apply([question], [said])
    (r,) = Guard(verifier, GuardConfig("revise")).apply([question], [said])
    assert (a.action, a.text, a.original) == (act_a, shown_a, said)
    assert (r.action, r.text, r.original) == (act_r, shown_r, said)
    if act_a == "kept" and said != ABSTAIN:
        assert a.label == "supported"


def test_one_verification_serves_every_mode(tiny_kb):
    checker = SureChecker()
    guard = Guard(Verifier(tiny_kb, checker, VerifierConfig(evidence_k=5)))
    questions = ["What is the capital of Mongolia?", "Which languages are spoken in Switzerland?"]
    # the graph refutes the first; on the second it is silent, but a passage is retrieved
    said = ["Beijing.", "Zulu."]
    verdicts = guard.verdicts(questions, said)
    assert [v.label for v in verdicts] == ["refuted", "supported"]  # the checker said so
    calls = list(checker.calls)
    revised = Guard(guard.verifier, GuardConfig("revise")).apply(questions, said, verdicts)
    assert checker.calls == calls  # no second pass
    assert [g.action for g in revised] == ["revised", "kept"]
    assert revised[1].to_dict()["label"] == "supported"
    with pytest.raises(ValueError, match="must pair up"):
        guard.apply(questions, said[:1])
    with pytest.raises(ValueError, match="`mode` must be one of"):
        GuardConfig("shout")


@pytest.fixture
def sure(tiny_kb):
    """A verifier whose checker always says supported, and that checker."""
    checker = SureChecker()
    return Verifier(tiny_kb, checker, VerifierConfig(evidence_k=5)), checker


def test_subject_the_kb_does_not_name_is_not_enough_info_without_the_checker(tiny_kb, sure):
    v, checker = sure
    unnamed_q, unnamed_s, known = v.verify(
        ["Mongolia and Russia.", "The capital of Eljunlor is Beijing.", "Zulu."],
        ["Which countries border Eljunlor?", None, "Which languages are spoken in Switzerland?"],
    )
    for x in (unnamed_q, unnamed_s):
        assert (x.label, x.decided_by) == ("not_enough_info", "graph")
        assert "names no 'Eljunlor'" in x.reason
    assert unnamed_q.subject == "Eljunlor"
    # the borders question's linked answers were not misread as its subject
    assert checker.calls == ["Which languages are spoken in Switzerland? Zulu."]
    assert known.decided_by == "checker"
    off = Verifier(tiny_kb, checker, VerifierConfig(silence_is_nei=False))
    assert off.verify(["The capital of Eljunlor is Beijing."])[0].decided_by != "graph"


def test_unnamed_subject_reads_names_not_pronouns(tiny_kb):
    reader = Verifier(tiny_kb).reader
    assert reader.unnamed_subject("x", "What is the capital of Eljunlor?") == "Eljunlor"
    assert reader.unnamed_subject("x", "What is the capital of Mongolia?") is None
    assert reader.unnamed_subject("x", "What is the capital of Ulan Bator?") is None  # alias
    assert reader.unnamed_subject("The capital of it is Beijing.") is None
    assert reader.unnamed_subject("Nothing to read here.") is None


def test_an_answer_of_the_wrong_type_does_not_answer_its_question(sure):
    v, _ = sure
    wrong_type, statement, nothing = v.verify(
        ["Beijing.", "Beijing is spoken in Mongolia.", "."],
        ["Which languages are spoken in Mongolia?", None, "What is the capital of China?"],
    )
    # read from the question: a city cannot be a language, so the answer is wrong
    assert (wrong_type.label, wrong_type.decided_by) == ("refuted", "graph")
    assert "does not answer the question" in wrong_type.reason
    # the same object in a statement may be a misreading: not refuted by the graph
    assert statement.decided_by != "graph" or statement.label != "refuted"
    assert (nothing.label, nothing.reason) == ("not_enough_info", "empty claim")
    # where the graph holds no object of the pair, a wrong-looking type refutes nothing:
    # the value it lacks may share its name with an entity of another type
    (silent,) = v.verify(["Beijing."], ["Which languages are spoken in China?"])
    assert silent.label != "refuted"
    # an answer that states nothing is an abstention to every reader of answers: the guard
    # shows the phrase and never states more than the model did
    (g,) = Guard(v, GuardConfig("revise")).apply(["What is the capital of China?"], ["."])
    assert (g.action, g.text) == ("abstained", ABSTAIN)


def test_a_shared_name_is_corrected_through_the_entity_with_facts(tiny_kb):
    # "Mexico" names the country and a town in the Philippines (an alias); only the country
    # has a capital, so the correction is safe
    assert len(tiny_kb.graph.resolve("Mexico")) == 2
    (g,) = Guard(Verifier(tiny_kb), GuardConfig("revise")).apply(
        ["What is the capital of Mexico?"], ["Lima."]
    )
    assert (g.action, g.text) == ("revised", "Mexico City.")
