"""The bench's same-topic silent evidence set and per-set label checks (bench/silent.py), on a
tiny shared-data folder written here and checked by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.fixture
def silent(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import silent as module

    return module


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "wice").mkdir()
    claim = "Hetherington was killed in Misrata during the Libyan civil war."
    evidence = [
        "Tim Hetherington was killed in Misrata in April 2011.",  # supporting (group 0)
        "Skip to content",  # off topic and short
        "Hetherington made the documentary Restrepo about the war in Afghanistan.",  # silent
        "Hetherington was killed in Misrata during the Libyan civil war.",  # restates: skipped
    ]
    rows = [
        {"claim": claim, "evidence": str(evidence), "supporting_sentences": "[[0]]",
         "label": "supported"},
        # not supported: its sentences may contradict, so none is used
        {"claim": claim, "evidence": str(evidence), "supporting_sentences": "[]",
         "label": "not_supported"},
    ]  # fmt: skip
    (tmp_path / "wice" / "claim_test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "summedits").mkdir()
    doc = (
        "The company raised its dividend to $0.13 per share.\n"
        "The company expects net debt to fall below $25 billion by the end of the first quarter."
    )
    records = [
        {"doc": doc, "summary": "The company raised its dividend to $0.15 per share and expects "
         "net debt to fall.", "original_summary": "The company raised its dividend to $0.13 per "
         "share and expects net debt to fall.", "label": "0", "split": "test"},
        {"doc": doc, "summary": "x", "original_summary": "x", "label": "1", "split": "test"},
    ]  # fmt: skip
    (tmp_path / "summedits" / "summedits_demo.json").write_text(json.dumps(records))
    (tmp_path / "snli").mkdir()
    (tmp_path / "snli" / "s1.test").write_text("A man sleeps .\nA dog runs .\n")
    (tmp_path / "snli" / "s2.test").write_text("A man is tired .\nAn animal moves .\n")
    (tmp_path / "snli" / "labels.test").write_text("neutral\nentailment\n")
    return tmp_path


def test_silent_set_by_hand(silent, folder):
    wice = silent.wice_silent(folder, "test")
    # only the supported claim; sentence 0 supports, 1 is off topic, 3 restates the claim
    assert [r["evidence"] for r in wice] == [
        "Hetherington made the documentary Restrepo about the war in Afghanistan."
    ]
    summ = silent.summedits_silent(folder, "test")
    # the edit changed 0.13 → 0.15: the dividend sentence bears on it, the debt one does not
    assert [r["evidence"] for r in summ] == [
        "The company expects net debt to fall below $25 billion by the end of the first quarter."
    ]
    snli = silent.snli_neutral(folder, "test")
    assert [(r["claim"], r["evidence"]) for r in snli] == [("A man is tired.", "A man sleeps.")]
    rows = silent.silent_set(folder, "test", per_source=5)
    assert sorted(r["group"] for r in rows) == ["snli", "summedits", "wice"]
    assert {r["label"] for r in rows} == {"not_enough_info"}


def test_label_check_by_hand(silent):
    gold = ["supported", "refuted", "not_enough_info", "not_enough_info"]
    pred = ["supported", "refuted", "refuted", "not_enough_info"]
    c = silent.label_check(gold, pred)
    assert c["gold_share"] == {"supported": 0.25, "refuted": 0.25, "not_enough_info": 0.5}
    assert c["predicted_share"] == {"supported": 0.25, "refuted": 0.5, "not_enough_info": 0.25}
    # cap 1.5 × 0.25 + 0.05 = 0.425 < 0.5
    assert c["refuted_cap"] == 0.425 and c["refuted_share_met"] is False
    assert c["confusion"] == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
