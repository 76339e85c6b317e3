"""The one decision rule (grounded.factcheck.decision): probabilities → verdict, the same in
pair scoring, the verifier, the audit and the guard."""

from __future__ import annotations

import json

import numpy as np
import pytest

from grounded.cli.main import main
from grounded.factcheck.checker import FactChecker
from grounded.factcheck.decision import DecisionRule, decide, decide_ids, decision_rule
from grounded.factcheck.labels import Predictions
from grounded.types import LABELS
from grounded.verify import Auditor, Guard, Verifier, VerifierConfig

# the demo's checker: nearly flat, supported on top (LABELS order: supported, refuted, NEI)
FLAT = [0.36, 0.33, 0.31]


@pytest.mark.parametrize(
    ("probs", "rule", "label", "why"),
    [
        (FLAT, DecisionRule(), "not_enough_info", "below min_confidence 0.5"),
        ([0.55, 0.40, 0.05], DecisionRule(), "supported", "0.15 above the runner-up"),
        # 0.50 - 0.44 = 0.06 < min_margin 0.1
        ([0.50, 0.44, 0.06], DecisionRule(), "not_enough_info", "below min_margin 0.1"),
        ([0.05, 0.55, 0.40], DecisionRule(), "not_enough_info", "below refute_margin 0.2"),
        ([0.05, 0.65, 0.30], DecisionRule(), "refuted", "0.35 above the runner-up"),
        ([0.2, 0.3, 0.5], DecisionRule(), "not_enough_info", "not_enough_info is the most"),
        ([0.50, 0.35, 0.15], DecisionRule(min_confidence=0.6), "not_enough_info", "below min"),
        ([0.50, 0.45, 0.05], DecisionRule(min_confidence=0.0, min_margin=0.0), "supported", ""),
        # refute_margin below min_margin: min_margin still applies
        ([0.1, 0.5, 0.4], DecisionRule(refute_margin=0.0, min_margin=0.15), "not_enough_info", ""),
    ],
)
def test_decide_by_hand(probs, rule, label, why):
    (d,) = decide(np.array(probs), rule)
    assert d.label == label
    assert why in d.reason
    assert d.top == LABELS[int(np.argmax(probs))]
    assert d.confidence == pytest.approx(probs[LABELS.index(label)])
    assert decide_ids(np.array([probs]), rule).tolist() == [LABELS.index(label)]


def test_decide_applies_biases_first():
    # log-space +log(2) on NEI: [0.4, 0.2, 0.4] → [0.4/1.4, 0.2/1.4, 0.8/1.4]
    (d,) = decide(np.array([0.4, 0.2, 0.4]), DecisionRule(), biases=[0.0, 0.0, np.log(2)])
    assert d.label == d.top == "not_enough_info"
    assert d.confidence == pytest.approx(0.8 / 1.4)


def test_rule_round_trip_and_errors():
    rule = DecisionRule(min_confidence=0.4, min_margin=0.05, refute_margin=0.3)
    assert DecisionRule.from_dict(rule.to_dict()) == rule
    assert DecisionRule.from_dict(None) == DecisionRule()
    with pytest.raises(ValueError, match="`min_margin` must be a number in"):
        DecisionRule(min_margin=1.5)
    with pytest.raises(ValueError, match="unknown key"):
        DecisionRule.from_dict({"margin": 0.1})
    assert decision_rule(None, 0.7) == DecisionRule(min_confidence=0.7)


def test_predictions_label_by_the_rule():
    preds = Predictions(np.array([FLAT, [0.8, 0.1, 0.1]]))
    assert preds.labels == ["not_enough_info", "supported"]
    assert preds.top_labels == ["supported", "supported"]
    assert preds[0].label == "not_enough_info" and preds[0].top == "supported"
    assert preds[0].confidence == pytest.approx(0.31)
    assert "min_confidence" in preds[0].reason


@pytest.fixture
def flat_checker(tiny_checker, monkeypatch):
    """The tiny checker reading every pair as the demo's checker does (0.36 / 0.33 / 0.31),
    without calibration biases."""
    checker = tiny_checker[0]

    def forward(self, claims, evidence, batch_size, show_progress):
        return np.array([FLAT] * len(claims))

    monkeypatch.setattr(FactChecker, "_forward", forward)
    monkeypatch.setattr(checker, "biases", np.zeros(3))
    return checker


CLAIM = "The capital of Mongolia is Ulaanbaatar."
EVIDENCE = "Mongolia borders China and Russia."


def test_flat_probabilities_are_not_enough_info_everywhere(flat_checker, tiny_kb, tmp_path):
    checker = flat_checker
    # pair scoring, Python
    pred = checker.predict([(CLAIM, EVIDENCE)])
    assert pred.labels == ["not_enough_info"] and pred.top_labels == ["supported"]
    # pair scoring, command line: the line shows the probabilities, the label and why
    folder = tmp_path / "flat"
    checker.set_calibration([0.0, 0.0, 0.0], {"tuned_on": "test"})
    checker.save_pretrained(folder)
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"claim": CLAIM, "evidence": EVIDENCE}) + "\n")
    out = tmp_path / "scored.jsonl"
    assert main(["factcheck", "score", str(folder), "--pairs", str(pairs), "--out", str(out)]) == 0
    row = json.loads(out.read_text())
    assert row["label"] == "not_enough_info" and row["top"] == "supported"
    assert "below min_confidence" in row["why"]
    assert row["probabilities"]["supported"] == pytest.approx(0.36)
    # the verifier (checker only, so the graph does not decide first)
    verifier = Verifier(tiny_kb, checker, VerifierConfig(use_graph=False, evidence_k=5))
    (v,) = verifier.verify([CLAIM])
    assert (v.label, v.decided_by) == ("not_enough_info", "checker")
    assert "below min_confidence" in v.reason
    # the audit
    auditor = Auditor(tiny_kb, checker, verifier_config=VerifierConfig(use_graph=False))
    report = auditor.audit_text(CLAIM)
    assert [v.label for v in report.verdicts] == ["not_enough_info"]
    # the guard: not supported, so the answer is withheld, never refuted
    guard = Guard(verifier)
    (g,) = guard.apply(["What is the capital of Mongolia?"], ["Ulaanbaatar."])
    assert (g.action, g.label) == ("abstained", "not_enough_info")


def test_verifier_min_confidence_overrides_the_checkers_rule(flat_checker, tiny_kb):
    flat_checker.rule = DecisionRule(min_confidence=0.3, min_margin=0.0)
    try:
        v = Verifier(tiny_kb, flat_checker, VerifierConfig(use_graph=False))
        assert v.rule == DecisionRule(min_confidence=0.3, min_margin=0.0)
        assert v.verify([CLAIM])[0].label == "supported"
        config = VerifierConfig(use_graph=False, min_confidence=0.5)
        strict = Verifier(tiny_kb, flat_checker, config)
        assert strict.verify([CLAIM])[0].label == "not_enough_info"
    finally:
        flat_checker.rule = DecisionRule()


# -- calibration: biases, then the rule, tuned on a named set ------------------------------------
def test_fit_rule_by_hand():
    from grounded.factcheck.training import fit_rule

    # gold: NEI, refuted, supported, NEI. Argmax gives refuted, refuted, supported, supported:
    # balanced accuracy (0/2 + 1 + 1) / 3 = 0.667 and refuted predicted for half the pairs
    # (cap 1.5 × 0.25 + 0.05 = 0.425). A rule with refute_margin > 0.1 and min_margin > 0.05
    # abstains on rows 0 and 3 (lead 0.1 and 0.05) and keeps rows 1, 2 (lead 0.6 and 0.5).
    p = np.array([[0.2, 0.45, 0.35], [0.1, 0.75, 0.15], [0.7, 0.1, 0.2], [0.45, 0.15, 0.4]])
    rule, score = fit_rule(p, [2, 1, 0, 2])
    assert score == pytest.approx(1.0)
    assert decide_ids(p, rule).tolist() == [2, 1, 0, 2]
    assert rule.refute_margin > 0.1 and rule.min_margin > 0.05


def test_calibrate_records_what_it_was_tuned_on(tiny_checker, tmp_path):
    from datasets import Dataset

    from grounded.factcheck.training import calibrate

    checker = FactChecker.from_pretrained(tiny_checker[2])
    dev = Dataset.from_dict(
        {
            "claim": [CLAIM, CLAIM, "Mongolia borders China.", "Mongolia borders Chad."],
            "evidence": [EVIDENCE, "The capital of Mongolia is Ulaanbaatar."] + [EVIDENCE] * 2,
            "label": ["not_enough_info", "supported", "supported", "not_enough_info"],
        }
    )
    with pytest.warns(UserWarning, match=r"has no \['refuted'\] pairs"):
        info = calibrate(checker, dev, tuned_on="four hand-written pairs")
    assert info["tuned_on"] == "four hand-written pairs"
    assert info["labels_absent"] == ["refuted"]
    assert info["dev_labels"] == {"supported": 2, "refuted": 0, "not_enough_info": 2}
    assert sum(info["predicted_labels"].values()) == 4
    # no refuted in gold: the cap is 0.05, so the rule predicts no refuted on these pairs
    assert info["predicted_labels"]["refuted"] == 0
    checker.save_pretrained(tmp_path / "c")
    again = FactChecker.from_pretrained(tmp_path / "c")
    assert again.rule == checker.rule
    assert again.metadata["calibration"]["rule"] == checker.rule.to_dict()
    np.testing.assert_allclose(again.biases, checker.biases)


def test_train_factchecker_calibrates_on_the_given_pairs(tiny_kb, tiny_bert_dir, tmp_path):
    from grounded.factcheck import CheckerOptimConfig, ClaimDataConfig, FactCheckerConfig
    from grounded.factcheck.training import train_factchecker

    cal = tmp_path / "cal.jsonl"
    rows = [
        {"claim": CLAIM, "evidence": EVIDENCE, "label": "not_enough_info"},
        {
            "claim": CLAIM,
            "evidence": "Ulaanbaatar is the capital of Mongolia.",
            "label": "SUPPORTS",
        },
        {"claim": CLAIM, "evidence": "The capital of Mongolia is Paris.", "label": "REFUTES"},
    ]
    cal.write_text("".join(json.dumps(r) + "\n" for r in rows))
    optim = CheckerOptimConfig(max_steps=3, per_device_train_batch_size=8, warmup_steps=0.0)
    run = train_factchecker(
        tiny_kb,
        data_config=ClaimDataConfig(max_train_claims=20, max_test_claims=5, test_fraction=0.3),
        checker_config=FactCheckerConfig(base_model=str(tiny_bert_dir), max_length=64, optim=optim),
        show_progress=False,
        calibration_pairs=cal,
    )
    info = run.checker.metadata["calibration"]
    assert info["tuned_on"] == f"calibration pairs ({cal}), not trained on"
    assert info["dev_pairs"] == 3
    assert info["dev_labels"] == {"supported": 1, "refuted": 1, "not_enough_info": 1}
    assert set(info["rule"]) == {"min_confidence", "min_margin", "refute_margin"}
    assert run.data.stats()["train"]["sources"].get("hard_nei", 0) > 0
