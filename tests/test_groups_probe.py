"""Groups of a pretrained base: the closed-book probe, the counterfactual group (KAFT), and
the training examples that teach what the base lacks (out-of-KB, closed-book, counterfactual).
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from test_train_data import _three_fact_kb

from grounded.answers import ABSTAIN, format_answer
from grounded.data import EntityGroups, answerable_pairs, build_examples, build_groups
from grounded.data.groups import TRAINING_SYLLABLES, training_out_of_kb_pairs
from grounded.data.probe import model_prober, probe_closed_book, prober
from grounded.evaluation.counterfactual import counterfactual_graph, with_counterfactual_evidence
from grounded.evaluation.questions import build_questions

KNOWS = {"Mongolia", "China"}


def stub_answerer(kb):
    """Answers the KB object for subjects in KNOWS (one as a bare object), else a wrong city."""

    def answer(questions):
        out = []
        for q in questions:
            subject = next(s for s in sorted(kb.graph.entities, key=len, reverse=True) if s in q)
            rel = next(r.name for r in kb.graph.schema if any(
                t.format(subject=subject) == q for t in r.questions))  # fmt: skip
            objects = kb.graph.objects(subject, rel)
            out.append(format_answer(objects) if subject in KNOWS else "Paris.")
        return out

    return answer


def test_closed_book_probe_decides_known_and_unknown(tiny_kb, tmp_path):
    answer = stub_answerer(tiny_kb)
    probe = prober(tiny_kb, answer, max_pairs=100, seed=0)
    groups = build_groups(tiny_kb, None, seed=0, out_of_kb=4, prober=probe)
    assert groups.split_source == "closed_book_probe" and groups.unprobed == 0
    seen = set(groups.seen)
    decided = [p for p in answerable_pairs(tiny_kb.graph) if p not in seen]
    # every pair outside seen is probed, and known is exactly what the stub answers right
    assert sorted(groups.known + groups.unknown) == sorted(decided)
    assert groups.known == [p for p in decided if p[0] in KNOWS]
    assert groups.unknown == [p for p in decided if p[0] not in KNOWS]
    # seen draws from both classes
    assert {s for s, _ in groups.seen} & KNOWS and {s for s, _ in groups.seen} - KNOWS
    record = groups.probe
    assert record["n_probed"] == len(decided) == record["n_pairs"]
    assert record["n_known"] == len(groups.known)
    assert record["settings"] == {"max_pairs": 100, "seed": 0}
    for s, r, question, said, outcome in record["answers"]:
        assert s in question and outcome == ("correct" if s in KNOWS else "hallucination")
        assert said == ("Paris." if s not in KNOWS else format_answer(tiny_kb.graph.objects(s, r)))
    groups.save(tmp_path / "groups.json")
    assert EntityGroups.load(tmp_path / "groups.json") == groups
    # deterministic, and the home-pretrained base keeps its split (no probe asked)
    assert build_groups(tiny_kb, None, seed=0, out_of_kb=4, prober=probe) == groups
    split = SimpleNamespace(known_subjects=["Russia"], unknown_subjects=[])
    by_split = build_groups(tiny_kb, split, seed=0, out_of_kb=4, prober=probe)
    assert by_split.split_source == "pretrain_split" and not by_split.probe
    assert all(s == "Russia" for s, _ in by_split.known)


def test_the_probe_is_capped_and_seeded(tiny_kb):
    answer = stub_answerer(tiny_kb)
    groups = build_groups(tiny_kb, None, seed=0, out_of_kb=0, prober=prober(tiny_kb, answer,
                          max_pairs=3, seed=5))  # fmt: skip
    assert groups.probe["n_probed"] == 3 == len(groups.known) + len(groups.unknown)
    assert groups.unprobed == groups.probe["n_pairs"] - 3 > 0
    pairs = sorted(set(answerable_pairs(tiny_kb.graph)) - set(groups.seen))
    again = probe_closed_book(tiny_kb, pairs, answer, max_pairs=3, seed=5)
    assert again.probed == [(a[0], a[1]) for a in groups.probe["answers"]]
    other = probe_closed_book(tiny_kb, pairs, answer, max_pairs=3, seed=6)
    assert other.probed != again.probed or len(pairs) <= 3
    with pytest.raises(ValueError, match="`probe_pairs` must be >= 0"):
        probe_closed_book(tiny_kb, pairs, answer, max_pairs=-1)


def test_old_groups_files_load_without_the_counterfactual_group(tiny_kb, tmp_path):
    groups = build_groups(tiny_kb, None, out_of_kb=2)
    data = groups.to_dict()
    for key in ("counterfactual", "counterfactual_facts", "probe", "unprobed"):
        data.pop(key)
    data["counts"].pop("counterfactual")
    (tmp_path / "groups.json").write_text(json.dumps(data))
    old = EntityGroups.load(tmp_path / "groups.json")
    assert old.counterfactual == [] and old.pairs("counterfactual") == []
    assert old.seen == groups.seen and old.unknown == groups.unknown


def test_model_prober_asks_as_the_evaluator_asks(tiny_kb, tiny_base):
    from grounded.model import GroundedModel
    from grounded.model.artifacts import load_base

    tokenizer, lm = load_base(tiny_base)
    pairs = answerable_pairs(tiny_kb.graph)
    probe = model_prober(tiny_kb, lm, tokenizer, max_pairs=5, seed=0, max_new_tokens=6)(pairs)
    questions = [a[2] for a in probe.answers]
    base = GroundedModel.from_base(tiny_base, tiny_kb)
    said = [a.text for a in base.answer(questions, max_new_tokens=6)]
    assert [a[3] for a in probe.answers] == said  # the `base` variant's own answers
    assert probe.settings["prompt_format"] == base.batcher.prompt_format
    assert len(probe.answers) == 5 and probe.n_pairs == len(pairs)


# -- the counterfactual group, by hand on a three-fact graph -------------------------------------
def test_counterfactual_group_by_hand_on_three_facts():
    from grounded.answers import score_answer
    from grounded.retrieval import Evidence

    kb, facts = _three_fact_kb()
    kb.name, kb.checksum = "three", "c" * 12
    groups = build_groups(kb, None, seed=0, seen_fraction=0.34, out_of_kb=0, counterfactual=5)
    # one pair seen, one counterfactual (at most a third of the two left: at least one), one
    # unknown
    assert (len(groups.seen), len(groups.counterfactual), len(groups.unknown)) == (1, 1, 1)
    ((s, r, said),) = groups.counterfactual_facts
    true = kb.graph.objects(s, r)[0]
    assert (s, r) == groups.counterfactual[0] and said in {"X", "Y", "Z"} - {true}
    (q,) = [q for q in build_questions(kb.graph, groups) if q.group == "counterfactual"]
    assert q.gold == (said,)
    # the retrieved real fact is replaced, in its slot, by the counterfactual one
    row = [Evidence(kb.graph.verbalize(t), 1.0, "dense", "fact", t, i, t.key) for i, t in
           enumerate(facts)]  # fmt: skip
    retrieved = [row]
    (ev,) = with_counterfactual_evidence(kb, [q], retrieved)
    slot = [t.subject for t in facts].index(s)
    assert [e.text for e in ev][slot] == f"The capital of {s} is {said}."
    assert ev[slot].id == -1 and len(ev) == 3
    assert f"The capital of {s} is {true}." not in [e.text for e in ev]
    # a missed fact goes first
    others = [[e for e in retrieved[0] if e.triple.subject != s]]
    (ev,) = with_counterfactual_evidence(kb, [q], others)
    assert ev[0].text == f"The capital of {s} is {said}." and len(ev) == 2
    # scored against what the evidence states, by the same scorer
    cf = counterfactual_graph(kb.graph, groups)
    assert score_answer(cf, s, r, f"{said}.").outcome == "correct"
    assert score_answer(cf, s, r, f"{true}.").outcome == "hallucination"
    assert counterfactual_graph(kb.graph, build_groups(kb, None, out_of_kb=0)) is None
    # training never makes the group's subject counterfactual
    pairs = [(t.subject, "capital") for t in facts]
    ex = build_examples(kb, pairs, k=3, p_no_gold=0.0, p_counterfactual=1.0, n_negatives=1,
                        counterfactual_exclude={s})  # fmt: skip
    assert [row["counterfactual"] for row in ex] == [t.subject != s for t in facts]
    assert [row["kind"] for row in ex] == [
        "answer" if t.subject == s else "counterfactual" for t in facts
    ]


# -- what training adds: out-of-KB and closed-book examples --------------------------------------
def test_new_example_kinds_come_in_their_shares(tiny_kb):
    graph = tiny_kb.graph
    groups = build_groups(tiny_kb, None, seed=0, out_of_kb=6)
    oob = training_out_of_kb_pairs(graph, groups, 8, seed=0)
    assert len(oob) == 8 and not set(oob) & set(groups.out_of_kb)
    assert all(not graph.objects(s, r) for s, r in oob)
    made_up = [s for s, _ in oob if s not in graph.entities]
    assert made_up and not set(made_up) & set(groups.made_up_subjects)
    assert all(not graph.resolve(s) for s in made_up)
    assert all(any(s.lower().startswith(x) for x in TRAINING_SYLLABLES) for s in made_up)
    assert len(made_up) < 8  # KB subjects asked a relation they lack, too

    common = dict(k=3, p_no_gold=0.3, p_counterfactual=0.3, n_negatives=1, seed=0)
    base = build_examples(tiny_kb, groups.seen, **common)
    ex = build_examples(tiny_kb, groups.seen, out_of_kb=oob, p_closed_book=0.5, **common)
    kinds = ex["kind"]
    n = len(base)
    # the KB examples are drawn as before; the new kinds come after them
    assert ex.select(range(n))["prompt"] == base["prompt"]
    assert kinds[n : n + 8] == ["out_of_kb"] * 8
    closed = [row for row in ex if row["kind"] == "closed_book"]
    assert 0.2 * n <= len(closed) <= 0.8 * n and len(ex) == n + 8 + len(closed)
    assert {"answer", "no_gold", "counterfactual"} <= set(kinds[:n])
    for row in ex:
        s, r = row["subject"], row["relation"]
        if row["kind"] == "out_of_kb":
            assert row["answer"] == ABSTAIN and row["abstain"] and row["evidence_texts"]
            assert not any(f" {s} " in f" {t} " for t in row["evidence_texts"]) or (
                s in graph.entities
            )
        elif row["kind"] == "closed_book":
            assert row["evidence_texts"] == [] and row["evidence_ids"] == []
            assert row["answer"] == format_answer(graph.objects(s, r)) and not row["abstain"]
            assert (s, r) in set(groups.seen)  # the known group is never trained on
        elif row["kind"] == "no_gold":
            assert row["answer"] == ABSTAIN
    with pytest.raises(ValueError, match=r"`p_closed_book` must be in \[0, 1\]"):
        build_examples(tiny_kb, groups.seen, p_closed_book=2.0)


def test_train_config_records_the_new_settings():
    from grounded.training import TrainConfig, variant_config

    data = TrainConfig().to_dict()["data"]
    assert {"p_counterfactual", "out_of_kb_examples", "p_closed_book", "counterfactual",
            "probe_pairs"} <= set(data)  # fmt: skip
    assert data["p_counterfactual"] > 0
    for name in ("sft", "raft"):
        d = variant_config(name).data
        assert (d.p_counterfactual, d.out_of_kb_examples, d.p_closed_book) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="`out_of_kb_examples` must be >= 0"):
        TrainConfig.from_dict({"out_of_kb_examples": -1})


def test_a_groups_file_is_reused_without_probing_again(tmp_path, tiny_kb, tiny_base, monkeypatch):
    from test_train import tiny_config

    import grounded.data.probe
    from grounded.training import train

    config = tiny_config(max_steps=1, feedback_every=0)
    first = train(tiny_kb, tiny_base, tmp_path / "a", config, show_progress=False)
    assert first.groups.probe["n_probed"] > 0

    def no_probe(*args, **kwargs):
        raise AssertionError("probed again")

    monkeypatch.setattr(grounded.data.probe, "model_prober", no_probe)
    reuse = tiny_config(max_steps=1, feedback_every=0, groups_file=str(tmp_path / "a" /
                        "groups.json"))  # fmt: skip
    second = train(tiny_kb, tiny_base, tmp_path / "b", reuse, show_progress=False)
    assert second.groups == first.groups
    with pytest.raises(ValueError, match=r"`groups_file` .* was drawn with seed 0, this run has 1"):
        train(tiny_kb, tiny_base, tmp_path / "c", update_seed(reuse, 1), show_progress=False)


def update_seed(config, seed):
    from grounded.config import update_config

    return update_config(config, {"seed": seed})


def test_an_evaluation_of_baselines_alone_probes_the_base(tmp_path, tiny_kb, tiny_base):
    from grounded.evaluation.runner import EvaluateConfig, evaluate

    config = EvaluateConfig(baselines=["base"], per_group=2, n_boot=10, max_new_tokens=4,
                            plots=False, probe_pairs=5, counterfactual=2)  # fmt: skip
    result = evaluate(tiny_kb, tiny_base, {}, tmp_path, config, show_progress=False)
    groups = result.report["groups"]
    assert groups["split_source"] == "closed_book_probe"
    assert groups["probe"]["n_probed"] == 5 and groups["counts"]["counterfactual"] == 2
    # the base variant's answers to probed questions are the probe's (same path, same prompt)
    assert groups["probe"]["settings"]["max_pairs"] == 5
