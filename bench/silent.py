"""Same-topic, silent evidence (issue 21): pairs whose evidence is on the claim's topic and
does not decide it, built from ``../shared/data``; and the label-distribution checks every
set of the free-text bench reports.

- WiCE: a claim's cited sentences that are in none of its supporting groups (claims labelled
  supported or partially supported, so the sentence is silent rather than contradicting),
  sharing at least two content words with the claim;
- SummEdits: an edited (inconsistent) summary against a document sentence sharing at least
  two content words with it and none of the edited words (the sentence does not bear on the
  edit);
- SNLI: neutral pairs.

Every pair is labelled ``not_enough_info``; ``group`` names its source. Test splits feed the
bench's figure; dev / ``evaluation`` splits may feed training and calibration.
"""

from __future__ import annotations

import ast
import json
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import shared_data as sd

from grounded.factcheck.hard_nei import content_words
from grounded.factcheck.metrics import classification_report
from grounded.types import LABELS

SILENT_TARGET = 0.80
_TOKEN = re.compile(r"[\w$][\w.'$%-]*")
_SENT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


def _tokens(text: str) -> set[str]:
    return {t.lower().rstrip(".") for t in _TOKEN.findall(text)}


def _on_topic(words: set[str], sentence: str) -> bool:
    """Two or more content words shared, five or more words, and mostly saying something
    else (at most 60% of its content words in the claim: not a restatement)."""
    other = content_words(sentence)
    shared = len(words & other)
    return shared >= 2 and len(sentence.split()) >= 5 and shared <= 0.6 * len(other)


def _literal(value: Any) -> Any:
    return ast.literal_eval(value) if isinstance(value, str) else value


def wice_silent(folder: Path, split: str, seed: int = 0) -> list[dict[str, Any]]:
    """WiCE ``split``: one silent cited sentence per claim (supported or partially
    supported claims), sharing two or more content words with the claim."""
    rng = random.Random(f"wice-silent:{seed}")
    out = []
    path = folder / "wice" / f"claim_{split}.jsonl"
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        r = json.loads(line)
        if r["label"] not in ("supported", "partially_supported"):
            continue
        sentences = _literal(r["evidence"])
        used = {i for group in _literal(r["supporting_sentences"]) for i in group}
        words = content_words(r["claim"])
        options = [s for i, s in enumerate(sentences) if i not in used and _on_topic(words, s)]
        if options:
            out.append(
                {
                    "claim": r["claim"],
                    "evidence": rng.choice(options),
                    "label": "not_enough_info",
                    "group": "wice",
                }
            )
    return out


def summedits_silent(folder: Path, split: str, seed: int = 0) -> list[dict[str, Any]]:
    """SummEdits ``split``: each edited summary against one document sentence that shares
    two or more content words with it and none of the words the edit changed."""
    rng = random.Random(f"summedits-silent:{seed}")
    out = []
    for path in sorted((folder / "summedits").glob("summedits_*.json")):
        for r in json.loads(path.read_text(encoding="utf-8")):
            if r["split"] != split or str(r["label"]) != "0" or not r.get("original_summary"):
                continue
            edited = _tokens(r["summary"]) ^ _tokens(r["original_summary"])
            if not edited:
                continue
            words = content_words(r["summary"])
            sentences = [s for ln in r["doc"].splitlines() for s in _SENT.split(ln) if s.strip()]
            options = [s for s in sentences if _on_topic(words, s) and not edited & _tokens(s)]
            if options:
                out.append(
                    {
                        "claim": r["summary"],
                        "evidence": rng.choice(options),
                        "label": "not_enough_info",
                        "group": "summedits",
                    }
                )
    return out


def snli_neutral(folder: Path, split: str) -> list[dict[str, Any]]:
    """SNLI ``split``'s neutral pairs."""
    return [
        {**r, "group": "snli"} for r in sd.snli(folder, split) if r["label"] == "not_enough_info"
    ]


def silent_set(folder: Path, split: str, per_source: int, seed: int = 0) -> list[dict[str, Any]]:
    """Up to ``per_source`` pairs from each source (``test`` or ``dev`` splits; SummEdits
    reads ``test`` for test and ``evaluation`` otherwise)."""
    rng = random.Random(f"silent:{seed}")
    sources = (
        wice_silent(folder, split, seed),
        summedits_silent(folder, "test" if split == "test" else "evaluation", seed),
        snli_neutral(folder, split),
    )
    out = []
    for rows in sources:
        out += rng.sample(rows, min(per_source, len(rows)))
    return out


def label_check(gold: list[str], pred: list[str]) -> dict[str, Any]:
    """Gold and predicted label distributions, the confusion matrix, and the refuted-share
    target: share predicted refuted ≤ 1.5 × gold share of refuted + 0.05.

    Example:
        >>> c = label_check(["refuted", "supported"], ["refuted", "refuted"])
        >>> c["predicted_share"]["refuted"], c["refuted_cap"], c["refuted_share_met"]
        (1.0, 0.8, False)
    """
    n = len(gold)
    report = classification_report(gold, pred, labels=list(LABELS))
    g = {lab: round(sum(x == lab for x in gold) / n, 4) if n else 0.0 for lab in LABELS}
    p = {lab: round(sum(x == lab for x in pred) / n, 4) if n else 0.0 for lab in LABELS}
    cap = round(1.5 * g["refuted"] + 0.05, 4)
    return {
        "n": n,
        "gold_share": g,
        "predicted_share": p,
        "confusion": report["confusion"],
        "labels": report.get("labels", list(LABELS)),
        "macro_f1": round(report["macro_f1"], 4),
        "refuted_cap": cap,
        "refuted_share_met": p["refuted"] <= cap + 1e-9,
    }


def score_silent(checker: Any, folder: Path, per_source: int) -> dict[str, Any]:
    """Share of same-topic silent pairs (test splits) predicted not enough info, overall and
    per source, with the mean probabilities."""
    rows = silent_set(folder, "test", per_source)
    preds = checker.predict([(r["claim"], r["evidence"]) for r in rows], show_progress=False)
    groups = sorted({r["group"] for r in rows})
    per = {}
    for grp in groups:
        idx = [i for i, r in enumerate(rows) if r["group"] == grp]
        labels = [preds.labels[i] for i in idx]
        per[grp] = {
            "n": len(idx),
            "nei_share": round(labels.count("not_enough_info") / len(idx), 4),
            "refuted_share": round(labels.count("refuted") / len(idx), 4),
        }
    labels = preds.labels
    return {
        "n": len(rows),
        "nei_share": round(labels.count("not_enough_info") / max(1, len(rows)), 4),
        "target": SILENT_TARGET,
        "per_source": per,
        "mean_probabilities": dict(
            zip(LABELS, np.round(preds.probabilities.mean(axis=0), 4).tolist(), strict=True)
        )
        if len(rows)
        else {},
        "labels": label_check([r["label"] for r in rows], labels),
    }
