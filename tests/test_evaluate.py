"""The evaluator: rates and targets on hand-made answers, questions from the groups, the
end-to-end report on tiny models, the CLI, and the quick demo on the tiny KB."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from grounded.cli.main import main
from grounded.data.groups import build_groups
from grounded.evaluation import (
    EvaluateConfig,
    ablation_findings,
    build_questions,
    evaluate,
    summarize,
)
from grounded.evaluation.runner import _score, shared_groups
from grounded.evaluation.targets import Target, check_targets, load_targets
from grounded.model.generate import Answer
from grounded.training import train, variant_config

LLAMA_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


pytestmark = pytest.mark.usefixtures("one_thread")


def rows(variant: str, group: str, outcomes: str, relation: str = "capital") -> list[dict]:
    """``outcomes`` as letters: c correct, a abstain, h hallucination."""
    word = {"c": "correct", "a": "abstain", "h": "hallucination"}
    return [
        {"variant": variant, "group": group, "relation": relation, "outcome": word[o]}
        for o in outcomes
    ]


# -- maths on hand-made answers -----------------------------------------------------------------
def test_summary_rates_match_hand_counts():
    data = (
        rows("sft", "unknown", "cchha")
        + rows("sft", "out_of_kb", "hha")
        + rows("sft", "seen", "ccc", relation="region")
    )
    s = summarize(data, n_boot=200)["sft"]
    unknown = s["groups"]["unknown"]
    assert (unknown["accuracy"]["numerator"], unknown["accuracy"]["denominator"]) == (2, 5)
    assert unknown["hallucination_rate"]["value"] == pytest.approx(2 / 5)
    # answered = 4 (one abstention): 2 hallucinations / 4
    assert unknown["hallucination_rate_answered"]["value"] == pytest.approx(2 / 4)
    assert unknown["hallucination_rate_answered"]["denominator"] == 4
    assert unknown["abstention_rate"]["value"] == pytest.approx(1 / 5)
    # all questions: 11; hallucinations 2 + 2 = 4
    assert s["all"]["hallucination_rate"]["numerator"] == 4
    assert s["all"]["hallucination_rate"]["denominator"] == 11
    # KB-covered excludes out_of_kb: 5 + 3 questions, 5 correct
    assert (
        s["kb_covered"]["accuracy"]["numerator"],
        s["kb_covered"]["accuracy"]["denominator"],
    ) == (5, 8)
    assert s["relations"]["region"]["accuracy"]["value"] == 1.0
    assert s["relations"]["capital"]["hallucination_rate"]["value"] == pytest.approx(2 / 5)
    low, high = unknown["hallucination_rate"]["low"], unknown["hallucination_rate"]["high"]
    assert 0.0 <= low <= 0.4 <= high <= 1.0


def test_targets_and_ablations_on_hand_made_rates():
    data = (
        rows("sft", "unknown", "c" * 10 + "h" * 90)
        + rows("raft", "unknown", "c" * 50 + "h" * 50)
        + rows("grounded", "unknown", "c" * 95 + "h" * 3 + "a" * 2)
        + rows("grounded", "seen", "c" * 100)
        + rows("grounded", "out_of_kb", "a" * 95 + "h" * 5)
        + rows("no_constraint", "unknown", "c" * 50 + "h" * 50)
        + rows("no_feedback", "unknown", "c" * 95 + "h" * 3 + "a" * 2)
    )
    summary = summarize(data, n_boot=500)
    targets = [
        Target("grounded", "unknown", "hallucination_rate", at_most=0.05),
        Target("grounded", "unknown", "hallucination_rate", reduction_vs="sft", at_least=0.8),
        Target("grounded", "all", "hallucination_rate", below="raft"),
        Target("grounded", "out_of_kb", "abstention_rate", at_least=0.9),
    ]
    checked = check_targets(summary, targets)
    assert [t["reached"] for t in checked] == [True, True, True, True], checked
    # grounded 3/100 vs sft 90/100: 96.7% lower
    assert "96.7% lower" in checked[1]["detail"]
    assert checked[0]["target"] == "grounded: hallucination rate (unknown) <= 5%"
    findings = {a["ablation"]: a["verdict"] for a in ablation_findings(summary)}
    # no_constraint: 50 hallucinations of 100 vs grounded 8 of 300 -> intervals apart
    assert findings["no_constraint"] == "helps"
    assert findings["no_feedback"] == "no clear effect"
    assert "no_embedding" not in findings  # not in the run: no finding is made up


def test_targets_of_a_guarded_variant_name_it():
    data = rows("grounded+revise", "unknown", "c" * 96 + "a" * 4) + rows(
        "sft", "unknown", "h" * 100
    )
    targets = [
        Target("grounded+revise", "unknown", "hallucination_rate", at_most=0.05),
        Target(
            "grounded+revise", "unknown", "hallucination_rate", reduction_vs="sft", at_least=0.9
        ),
    ]
    first, second = check_targets(summarize(data, n_boot=100), targets)
    assert first["variant"] == "grounded+revise" and first["reached"] is True
    assert "100.0% lower" in second["detail"]


def test_targets_report_misses_honestly():
    data = rows("grounded", "unknown", "c" * 5 + "h" * 5) + rows("grounded", "seen", "h" * 10)
    summary = summarize(data, n_boot=100)
    unknown, covered, vs_sft, near_base = check_targets(
        summary,
        [
            Target("grounded", "unknown", "hallucination_rate", at_most=0.05),
            Target("grounded", "kb_covered", "accuracy", at_least=0.9),
            Target("grounded", "unknown", "hallucination_rate", reduction_vs="sft", at_least=0.8),
            Target("grounded", "known", "accuracy", within_points_of="base", points=2),
        ],
    )
    assert (unknown["reached"], covered["reached"]) == (False, False)
    assert vs_sft["reached"] is None and "sft" in vs_sft["detail"]  # sft not in the run
    assert near_base["reached"] is None


def test_within_points_of_reads_above_and_below():
    # base 7/10 = 70%; grounded 9/10 = 90% (20 points above: reached); 6/10 = 60% (10 below)
    base = rows("base", "known", "c" * 7 + "h" * 3)
    above = rows("grounded", "known", "c" * 9 + "a")
    below = rows("grounded", "known", "c" * 6 + "a" * 4)
    target = [Target("grounded", "known", "accuracy", within_points_of="base", points=2)]
    (hi,) = check_targets(summarize(base + above, n_boot=50), target)
    (lo,) = check_targets(summarize(base + below, n_boot=50), target)
    assert hi["reached"] is True and hi["detail"].endswith("20.0 points above")
    assert lo["reached"] is False and lo["detail"].endswith("10.0 points below")


def test_the_projects_own_targets_file_loads_and_bad_files_are_named(tmp_path):
    targets = load_targets(Path(__file__).parent.parent / "bench" / "targets.yaml")
    assert len(targets) == 9 and all(t.title for t in targets)
    bad = tmp_path / "t.yaml"
    bad.write_text("- variant: grounded\n  group: all\n  measure: accuracy\n  at_lest: 0.9\n")
    with pytest.raises(ValueError, match=r"t.yaml: target 0 has unknown key\(s\) \['at_lest'\]"):
        load_targets(bad)
    bad.write_text("- {variant: g, group: all, measure: accuracy, at_least: 90}\n")
    with pytest.raises(ValueError, match="rate in \\[0, 1\\]"):
        load_targets(bad)
    bad.write_text("- {variant: g, group: all, measure: accuracy}\n")
    with pytest.raises(ValueError, match="a target asks one thing"):
        load_targets(bad)


def test_free_text_answers_go_to_the_judge_only(tiny_kb):
    class Judge:
        def __init__(self):
            self.seen = []

        def judge_answers(self, items):
            self.seen.extend(items)
            return ["supported" for _ in items]

    groups = build_groups(tiny_kb, None, seed=0, out_of_kb=2)
    qs = [q for q in build_questions(tiny_kb.graph, groups) if q.group == "unknown"][:4]
    gold = qs[0].gold[0]
    # a sentence a template reads is decided by the graph, however long
    template = tiny_kb.graph.schema[qs[3].relation].template
    stated = template.format(subject=qs[3].subject, object="the Very Far Away Place")
    answers = [
        Answer(qs[0].question, f"{gold}."),  # exact match: correct, judge not asked
        Answer(qs[1].question, "Paris."),  # short and wrong: hallucination, judge not asked
        Answer(qs[2].question, "Well, I think that it is most likely somewhere far away."),
        Answer(qs[3].question, stated),
    ]
    judge = Judge()
    scored = _score(tiny_kb, "v", qs, answers, judge, EvaluateConfig())
    assert len(stated.split()) >= EvaluateConfig().free_text_words
    assert [r["outcome"] for r in scored] == [
        "correct",
        "hallucination",
        "correct",
        "hallucination",
    ]
    assert [r["decided_by"] for r in scored] == ["exact", "exact", "checker", "exact"]
    assert [r["read_as"] for r in scored] == ["object", "object", "object", "statement"]
    assert len(judge.seen) == 1 and judge.seen[0].question == qs[2].question


def test_questions_are_deterministic_and_capped(tiny_kb):
    groups = build_groups(tiny_kb, None, seed=0, out_of_kb=6)
    a = build_questions(tiny_kb.graph, groups, per_group=3, seed=1)
    b = build_questions(tiny_kb.graph, groups, per_group=3, seed=1)
    assert a == b
    counts = {g: sum(q.group == g for q in a) for g in ("seen", "unknown", "out_of_kb")}
    assert counts == {"seen": 3, "unknown": 3, "out_of_kb": 3}
    for q in a:
        assert q.subject in q.question
        assert (q.gold == ()) == (q.group == "out_of_kb")
    with pytest.raises(ValueError, match="`per_group` must be >= 0"):
        build_questions(tiny_kb.graph, groups, per_group=-1)


# -- end to end on tiny models ------------------------------------------------------------------
def tiny_train(kb, base, out, variant: str, **overrides):
    config = variant_config(
        variant, max_steps=4, per_device_train_batch_size=4, learning_rate=2e-2,
        target_modules=LLAMA_LINEAR, lora_dropout=0.0, injection_hidden=16,
        feedback_every=0 if variant == "sft" else 2, feedback_samples=4, logging_steps=1,
        save_steps=1000, out_of_kb=4, max_new_tokens=6, **overrides,
    )  # fmt: skip
    train(kb, base, out, config, show_progress=False)
    return out


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory, tiny_kb, tiny_base):
    root = tmp_path_factory.mktemp("eval-models")
    return {v: tiny_train(tiny_kb, tiny_base, root / v, v) for v in ("sft", "grounded")}


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_evaluate_writes_a_consistent_report(tmp_path, tiny_kb, tiny_base, tiny_models):
    targets = Path(__file__).parent.parent / "bench" / "targets.yaml"
    config = EvaluateConfig(
        per_group=4, n_boot=100, max_new_tokens=6, guard=["rag", "grounded"], targets=str(targets)
    )
    result = evaluate(tiny_kb, tiny_base, tiny_models, tmp_path, config, show_progress=False)
    names = {p.name for p in result.files}
    assert {"report.json", "report.md", "answers.jsonl", "hallucination_by_group.png",
            "accuracy_vs_abstention.png"} <= names  # fmt: skip
    report = json.loads((tmp_path / "report.json").read_text())
    answers = read_jsonl(tmp_path / "answers.jsonl")
    guarded = ["rag+abstain", "rag+revise", "grounded+abstain", "grounded+revise"]
    assert set(report["metrics"]) == {"base", "rag", "sft", "grounded", *guarded}
    assert list(result.report["metrics"])[:4] == ["base", "rag", "rag+abstain", "rag+revise"]
    own = {(r["variant"], r["id"]): r for r in answers}
    for r in answers:
        if "+" not in r["variant"]:
            continue
        said = own[(r["variant"].split("+")[0], r["id"])]
        cf = r["group"] == "counterfactual"
        assert r["original"] == said["answer"]
        if r["guard_action"] == "kept":
            assert r["answer"] == said["answer"] and r["outcome"] == said["outcome"]
        elif r["guard_action"] == "abstained":
            assert r["outcome"] == "abstain"
        elif r["group"] == "counterfactual":  # the guard trusts the KB over the evidence
            assert r["variant"].endswith("+revise") and r["outcome"] == "hallucination"
            assert r["answer"].rstrip(".") in tiny_kb.graph.objects(r["subject"], r["relation"])
        else:  # revised: only in revise mode, from the KB: correct
            assert r["variant"].endswith("+revise") and r["outcome"] == "correct"
        # the graph alone keeps only what it supports: no hallucination gets through
        assert r["outcome"] != "hallucination" or r["guard_action"] == "kept" or cf
    for v in ("rag", "grounded"):
        kept_correct = sum(
            r["outcome"] == "correct" and r["guard_action"] == "kept"
            for r in answers
            if r["variant"] == v + "+abstain" and r["group"] != "counterfactual"
        )
        mine = [r for r in answers if r["variant"] == v and r["group"] != "counterfactual"]
        assert kept_correct == sum(r["outcome"] == "correct" for r in mine)
    # the targets file is checked as written: every target listed, reached or not (None when
    # the run lacks a variant it needs: raft and base are not trained here)
    assert [t["target"] for t in report["targets"]] == [t.title for t in load_targets(targets)]
    assert {t["variant"] for t in report["targets"]} == {"grounded"}
    assert all(t["reached"] in (True, False, None) for t in report["targets"])
    with pytest.raises(ValueError, match="`guard` names variants not evaluated here"):
        evaluate(tiny_kb, tiny_base, {}, tmp_path / "x", EvaluateConfig(guard=["sft"]))
    with pytest.raises(ValueError, match="`guard_modes` must be among"):
        EvaluateConfig(guard=["rag"], guard_modes=["shout"])
    # every variant answered the very same questions
    by_variant = {}
    for r in answers:
        by_variant.setdefault(r["variant"], []).append(r["question"])
    assert len({tuple(v) for v in by_variant.values()}) == 1
    assert report["n_questions"] == len(by_variant["sft"])
    # the report's numbers are the counts in answers.jsonl
    for variant, block in report["metrics"].items():
        for group, rates in block["groups"].items():
            mine = [r for r in answers if r["variant"] == variant and r["group"] == group]
            halluc = sum(r["outcome"] == "hallucination" for r in mine)
            assert rates["hallucination_rate"]["numerator"] == halluc
            assert rates["hallucination_rate"]["denominator"] == len(mine)
    # rag reads retrieved evidence; base does not
    assert "rag" in report["retrieval_recall"] and "base" not in report["retrieval_recall"]
    md = (tmp_path / "report.md").read_text()
    assert "| grounded |" in md and "## Targets" in md
    # a base without a pretrain split: the groups came from the closed-book probe
    probe = report["groups"]["probe"]
    assert report["groups"]["split_source"] == "closed_book_probe" and probe["n_probed"] > 0
    assert f"the {probe['n_known']} of {probe['n_probed']} probed pairs" in md
    assert report["questions_per_group"]["counterfactual"] > 0
    # each variant is described from what its grounding.json records, not from its name
    recorded = report["variant_settings"]
    assert recorded["grounded"]["injection"] == ["text", "embedding"]
    assert recorded["grounded"]["feedback"] == {"every": 2, "weight": 0.5, "judge": "graph"}
    assert recorded["sft"]["injection"] == [] and recorded["sft"]["feedback"] is None
    assert recorded["rag"]["trained"] is False and recorded["rag"]["injection"] == ["text"]
    assert (
        "- `grounded`: lora adapter; evidence: retrieved facts as text + their index vectors as "
        "soft tokens; margin constraint loss (λ_c 0.5); feedback every 2 steps judged by the "
        "graph (λ_f 0.5)\n"
    ) in md
    assert "- `sft`: lora adapter; evidence: none; no constraint loss; no feedback\n" in md
    assert "- `rag`: base model, nothing trained: retrieved facts in the prompt\n" in md


def test_report_describes_a_variant_from_its_settings_not_its_name():
    from grounded.evaluation.report import render_markdown, variant_settings

    grounding = {
        "adapter": {"name": "ia3"},
        "settings": {"constraint": "margin", "constraint_weight": 0.0, "feedback_every": 50,
                     "feedback_weight": 0.5},
        "train": {"feedback_judge": "graph + checker /runs/checker"},
        "prompt_format": {"format": "chat"},
    }  # fmt: skip
    settings = {"grounded": variant_settings(grounding, ["text"])}
    summary = summarize(rows("grounded", "seen", "ch"), n_boot=10)
    report = {"metrics": summary, "kb": {"name": "kb", "checksum": "0" * 12}, "base_model": "b",
              "n_questions": 2, "targets": [], "ablations": [], "files": [],
              "variant_settings": settings}  # fmt: skip
    md = render_markdown(report)
    assert (
        "- `grounded`: ia3 adapter; evidence: retrieved facts as text; no constraint loss; "
        "feedback every 50 steps judged by the graph + checker /runs/checker (λ_f 0.5); prompt "
        "in the chat template\n"
    ) in md
    del report["variant_settings"]  # a report from before the settings were recorded
    assert "- `grounded`: grounded: text + embedding injection" in render_markdown(report)


def test_models_trained_on_other_groups_are_refused(tmp_path, tiny_kb, tiny_base, tiny_models):
    other = tiny_train(tiny_kb, tiny_base, tmp_path / "other", "sft", seed=5)
    with pytest.raises(ValueError, match="different entity groups"):
        shared_groups({"sft": tiny_models["sft"], "other": other})
    with pytest.raises(FileNotFoundError, match=r"groups\.json is missing"):
        shared_groups({"x": tmp_path})


def test_cli_evaluate(tmp_path, tiny_kb, tiny_base, tiny_models, capsys):
    out = tmp_path / "report"
    argv = ["evaluate", str(tiny_kb.path), "--base", str(tiny_base), "--out", str(out),
            "--model", f"grounded={tiny_models['grounded']}", "--per-group", "2",
            "--baselines", "--n-boot", "50", "--plots", "false", "--quiet"]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "grounded" in printed and "report.md" in printed
    report = json.loads((out / "report.json").read_text())
    assert set(report["metrics"]) == {"grounded"}
    assert not (out / "hallucination_by_group.png").exists()
    assert main(["evaluate", str(tiny_kb.path), "--base", str(tiny_base), "--out", str(out),
                 "--model", "grounded"]) == 2  # fmt: skip
    assert "NAME=FOLDER" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    assert "hallucination" in capsys.readouterr().out


def test_quick_demo_on_the_tiny_kb_then_resumes(quick_demo, capsys):
    out, argv, printed = quick_demo
    assert "$ grounded train" in printed and "report.md" in printed
    # each step ran as its own process, its peak memory measured alone (Linux has wait4)
    assert "peak memory of a step:" in printed or not hasattr(os, "wait4")
    report = json.loads((out / "report" / "report.json").read_text())
    assert set(report["metrics"]) == {
        "base",
        "rag",
        "sft",
        "grounded",
        "rag+abstain",
        "rag+revise",
        "grounded+abstain",
        "grounded+revise",
    }
    grounding = json.loads((out / "models" / "grounded" / "grounding.json").read_text())
    assert grounding["settings"]["optim"]["max_steps"] == 6
    # run again: every step is reused, nothing retrained
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "$ grounded train" not in printed and "reusing" in printed
    # other settings in the same folder are refused
    assert main([*argv[:-1], "--seed", "3"]) == 2
    assert "other settings" in capsys.readouterr().err


def test_two_identical_quick_runs_give_identical_reports(tmp_path, tiny_kb, tiny_base):
    # issue 10: the same seed on the same machine gives the same report.json, training
    # included (thread count fixed by the one_thread fixture, as the CLI does)
    def run(name):
        model = tiny_train(tiny_kb, tiny_base, tmp_path / name / "model", "grounded")
        config = EvaluateConfig(per_group=3, n_boot=50, max_new_tokens=5, plots=False)
        out = tmp_path / name / "report"
        evaluate(tiny_kb, tiny_base, {"grounded": model}, out, config, show_progress=False)
        report = json.loads((out / "report.json").read_text())
        for key in ("seconds_per_variant", "variants", "command", "created", "versions"):
            report.pop(key, None)
        return report, (out / "answers.jsonl").read_text()

    first, second = run("a"), run("b")
    assert first[0]["metrics"] == second[0]["metrics"]
    assert first == second
