"""Training data: entity groups, examples with retrieved evidence, negatives, the graph judge."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from grounded.answers import ABSTAIN, format_answer, parse_generation
from grounded.data import (
    GROUPS,
    EntityGroups,
    answerable_pairs,
    build_examples,
    build_groups,
    format_prompt,
)
from grounded.training.feedback import GraphJudge
from grounded.types import AnswerItem
from kg import check_claim


@dataclass
class Split:
    known_subjects: list[str]
    unknown_subjects: list[str]


def test_groups_are_deterministic_disjoint_and_complete(tiny_kb, tmp_path):
    split = Split(["Mongolia", "China", "Russia"], ["South Africa", "Switzerland"])
    groups = build_groups(tiny_kb, split, seed=3, seen_fraction=0.5, out_of_kb=8)
    again = build_groups(tiny_kb, split, seed=3, seen_fraction=0.5, out_of_kb=8)
    assert groups == again
    assert build_groups(tiny_kb, split, seed=4, out_of_kb=8) != groups
    in_kb = [p for g in ("seen", "known", "unknown") for p in groups.pairs(g)]
    assert sorted(in_kb) == answerable_pairs(tiny_kb.graph)  # every pair, exactly once
    assert all(s in split.known_subjects for s, _ in groups.known)
    assert not any(s in split.known_subjects for s, _ in groups.unknown)
    seen_subjects = {s for s, _ in groups.seen}
    assert seen_subjects & set(split.known_subjects) and seen_subjects - set(split.known_subjects)
    assert len(groups.out_of_kb) == 8 and groups.made_up_subjects
    for s, r in groups.out_of_kb:
        assert not tiny_kb.graph.objects(s, r)  # the answer is not in the KB
    for s in groups.made_up_subjects:
        assert not tiny_kb.graph.resolve(s)
    assert groups.group_of("Mongolia", "capital") in GROUPS
    groups.save(tmp_path / "groups.json")
    assert EntityGroups.load(tmp_path / "groups.json") == groups


def test_groups_without_split_and_errors(tiny_kb):
    groups = build_groups(tiny_kb, None, out_of_kb=0)
    assert groups.known == [] and groups.unknown and groups.split_source == "none"
    with pytest.raises(ValueError, match=r"`seen_fraction` must be in \(0, 1\], got 0"):
        build_groups(tiny_kb, None, seen_fraction=0)
    with pytest.raises(ValueError, match="`group` must be one of"):
        groups.pairs("train")


def test_examples_carry_retrieved_evidence_gold_and_abstentions(tiny_kb):
    pairs = answerable_pairs(tiny_kb.graph)
    rows = list(build_examples(tiny_kb, pairs, k=4, p_no_gold=0.3, seed=1))
    assert len(rows) == len(pairs)  # one question template per relation in the tiny KB
    abstain = [r for r in rows if r["abstain"]]
    grounded = [r for r in rows if not r["abstain"]]
    assert abstain and grounded
    for r in rows:
        assert 1 <= len(r["evidence_ids"]) <= 4
        assert r["prompt"] == format_prompt(r["question"], r["evidence_texts"])
        facts = [
            tiny_kb.graph.verbalize(t) for t in tiny_kb.graph.facts(r["subject"], r["relation"])
        ]
        present = [t for t in r["evidence_texts"] if t in facts]
        if r["abstain"]:
            assert r["answer"] == ABSTAIN and not present
        else:
            assert present and r["answer"] == format_answer(r["gold_objects"])
            assert len(r["evidence_texts"]) - len(present) >= 1  # a distractor stays
    # the stored ids are the index records of the texts
    r = rows[0]
    assert [tiny_kb.index.get(i)["text"] for i in r["evidence_ids"]] == r["evidence_texts"]


def test_negatives_are_contradicted_and_distractors_come_first(tiny_kb):
    rows = list(build_examples(tiny_kb, [("Mongolia", "capital")], k=5, p_no_gold=0.0))
    r = rows[0]
    negatives = [n.rstrip(".") for n in r["negatives"]]
    assert len(negatives) == 3
    for o in negatives:
        assert check_claim(tiny_kb.graph, "Mongolia", "capital", o).result == "contradicted"
    distractor_objects = [tiny_kb.index.get(i).get("object") for i in r["evidence_ids"]]
    n_from = r["negatives_from_evidence"]
    assert n_from >= 1 and all(o in distractor_objects for o in negatives[:n_from])
    open_rows = list(build_examples(tiny_kb, [("Mongolia", "language")], p_no_gold=0.0))
    assert open_rows[0]["negatives"] == []  # an open relation: the graph contradicts nothing


def test_ungrounded_examples_have_no_evidence(tiny_kb):
    rows = list(build_examples(tiny_kb, [("South Africa", "capital")], retrieve=False))
    assert rows[0]["evidence_ids"] == [] and not rows[0]["abstain"]
    assert rows[0]["prompt"] == "Question: What is the capital of South Africa?\nAnswer:"
    assert rows[0]["answer"] == "Pretoria, Cape Town and Bloemfontein."


def test_prompt_and_answer_format():
    assert format_prompt("Q?", ["A.", "B."]) == "Evidence:\n- A.\n- B.\nQuestion: Q?\nAnswer:"
    assert format_answer(["Zulu", "English"]) == "Zulu and English."
    assert format_answer([]) == ABSTAIN
    assert parse_generation(" Bern.\nQuestion: x") == "Bern."


def test_graph_judge(tiny_kb):
    judge = GraphJudge(tiny_kb)
    items = [
        AnswerItem("q", "Ulan Bator.", "Mongolia", "capital"),  # alias
        AnswerItem("q", "Beijing.", "Mongolia", "capital"),
        AnswerItem("q", ABSTAIN, "Mongolia", "capital"),
        AnswerItem("q", "China and Russia.", "Mongolia", "borders"),
        AnswerItem("q", "China and Mexico.", "Mongolia", "borders"),  # closed: refuted
        AnswerItem("q", "Klingon.", "Mongolia", "language"),  # open: no verdict
        AnswerItem("q", "Paris.", None, None),
    ]
    assert judge.judge_answers(items) == [
        "supported",
        "refuted",
        "not_enough_info",
        "supported",
        "refuted",
        "not_enough_info",
        "not_enough_info",
    ]


def _three_template_graph():
    from kg import KnowledgeGraph, Relation, Schema, Triple

    capital = Relation(
        "capital",
        "The capital of {subject} is {object}.",
        ["What is the capital of {subject}?", "Name the capital of {subject}.",
         "Which city is the capital of {subject}?"],
    )  # fmt: skip
    region = Relation("region", "{subject} is in {object}.", ["Where is {subject}?"])
    facts = [(f"Land{i}", "capital", f"City{i}") for i in range(12)]
    facts += [(f"Land{i}", "region", "Asia") for i in range(12)]
    return KnowledgeGraph([Triple(*f) for f in facts], Schema([capital, region]))


def test_heldout_templates_never_reach_training_data():
    from types import SimpleNamespace

    from grounded.data.groups import heldout_templates
    from grounded.evaluation.questions import build_questions

    graph = _three_template_graph()
    held = heldout_templates(graph, seed=0)
    assert held == heldout_templates(graph, seed=0)  # deterministic under the seed
    assert len(held["capital"]) == 1 and "region" not in held  # one template: none held out
    kb = SimpleNamespace(graph=graph, checksum="x", name="t")
    groups = build_groups(kb, None, seed=0, seen_fraction=0.5, out_of_kb=0)
    assert groups.heldout_templates == held
    (i,) = held["capital"]
    heldout_question = graph.schema["capital"].questions[i]
    examples = build_examples(
        kb, groups.seen, retrieve=False, heldout_templates=groups.heldout_templates
    )
    stems = {heldout_question.format(subject=s) for s, _ in groups.seen}
    assert examples["question"] and not stems & set(examples["question"])
    # every trained template of the pair is used: the other two
    n_capital = sum(r == "capital" for r in examples["relation"])
    assert n_capital == 2 * sum(r == "capital" for _, r in groups.seen)
    # evaluation asks some questions with the held-out template, and says which
    qs = build_questions(graph, groups, seed=0)
    held_qs = [q for q in qs if q.phrasing == "heldout"]
    assert held_qs and all(q.relation == "capital" for q in held_qs)
    assert all(q.question == heldout_question.format(subject=q.subject) for q in held_qs)
    assert all(q.phrasing == "train" for q in qs if q.relation == "region")
    with pytest.raises(ValueError, match="every question template of 'region' is held out"):
        build_examples(kb, groups.seen, retrieve=False, heldout_templates={"region": [0]})


def test_report_rates_by_phrasing_by_hand():
    from grounded.evaluation.report import summarize

    rows = [
        {"variant": "g", "group": "unknown", "relation": "r", "phrasing": p, "outcome": o}
        for p, o in [("train", "correct")] * 3 + [("heldout", "correct"), ("heldout", "abstain")]
    ]
    ph = summarize(rows, n_boot=50)["g"]["phrasings"]
    assert ph["train"]["accuracy"]["value"] == 1.0
    assert (ph["heldout"]["accuracy"]["numerator"], ph["heldout"]["accuracy"]["denominator"]) == (
        1,
        2,
    )


# -- counterfactual and irrelevant evidence, by hand on a three-fact graph ----------------------
def _three_fact_kb():
    from types import SimpleNamespace

    from kg import KnowledgeGraph, Relation, Schema, Triple

    rel = Relation("capital", "The capital of {subject} is {object}.", ["Capital of {subject}?"])
    facts = [Triple("A", "capital", "X"), Triple("B", "capital", "Y"), Triple("C", "capital", "Z")]
    graph = KnowledgeGraph(facts, Schema([rel]))
    ids = {t.key: i for i, t in enumerate(facts)}

    class Retriever:  # every question retrieves the three facts, in the graph's order
        def retrieve_batch(self, questions, k):
            return [
                [SimpleNamespace(id=ids[t.key], text=graph.verbalize(t), triple=t) for t in facts]
                for _ in questions
            ]

    index = SimpleNamespace(id_of=lambda key: ids[key])
    return SimpleNamespace(graph=graph, index=index, retriever=Retriever()), facts


def test_counterfactual_examples_follow_the_evidence():
    kb, _ = _three_fact_kb()
    pairs = [("A", "capital"), ("B", "capital"), ("C", "capital")]
    ex = build_examples(kb, pairs, k=3, p_no_gold=0.0, p_counterfactual=1.0, n_negatives=1)
    for row in ex:
        true = kb.graph.objects(row["subject"], "capital")[0]
        (substitute,) = row["gold_objects"]
        assert row["counterfactual"] and substitute in {"X", "Y", "Z"} - {true}
        assert row["answer"] == f"{substitute}."
        assert row["negatives"] == [f"{true}."]  # the remembered truth is pushed down
        statement = f"The capital of {row['subject']} is "
        assert f"- {statement}{substitute}." in row["prompt"]
        assert f"{statement}{true}." not in row["prompt"]
        # the two other facts keep their index ids; the substitute has no vector
        assert len(row["evidence_ids"]) == 2 and len(row["evidence_texts"]) == 3
    plain = build_examples(kb, pairs, k=3, p_no_gold=0.0, p_counterfactual=0.0, n_negatives=1)
    assert not any(plain["counterfactual"])
    assert plain["answer"] == ["X.", "Y.", "Z."]


def test_irrelevant_evidence_examples_target_the_abstention():
    kb, facts = _three_fact_kb()
    ex = build_examples(kb, [("A", "capital")] * 1, k=3, p_no_gold=0.99, seed=1)
    (row,) = ex
    assert row["abstain"] and row["answer"] == ABSTAIN and not row["counterfactual"]
    assert "The capital of A is X." not in row["prompt"]
    assert row["evidence_texts"] == [kb.graph.verbalize(t) for t in facts[1:]]
