"""Readers for the human-labelled claim sets in ``../shared/data`` (see its PROVENANCE.md).

Benchmarks and tests only: the product never vendors these sets. Every reader returns
dicts with ``claim``, ``evidence`` (a string) and ``label`` (a verdict of
:data:`grounded.types.LABELS`), plus ``group`` where a set has sub-domains. Splits used for
training and for scoring are kept apart by the caller: never train on a ``test`` split.
"""

from __future__ import annotations

import ast
import json
import random
from pathlib import Path
from typing import Any

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"

_FEVER_TOKENS = {
    "-LRB-": "(",
    "-RRB-": ")",
    "-LSB-": "[",
    "-RSB-": "]",
    "-LCB-": "{",
    "-RCB-": "}",
    "-COLON-": ":",
}


def find_data(path: str | Path | None = None) -> Path | None:
    """The shared data folder, or None when it is absent (callers skip)."""
    folder = Path(path) if path else DEFAULT_DIR
    return folder if (folder / "snli").is_dir() else None


def detokenize(text: str) -> str:
    """FEVER/SNLI tokenised text back to plain spacing ("France -LRB- 1990 -RRB- ." → "France
    (1990).")."""
    for k, v in _FEVER_TOKENS.items():
        text = text.replace(k, v)
    for p in (" .", " ,", " ;", " :", " ?", " !", " 's", " n't", " )", " ]", " '"):
        text = text.replace(p, p[1:])
    return text.replace("( ", "(").replace("[ ", "[").replace("`` ", '"').replace(" ''", '"')


def snli(folder: Path, split: str) -> list[dict[str, Any]]:
    """SNLI ``dev`` or ``test``: premise as evidence, hypothesis as claim."""
    names = {"entailment": "supported", "contradiction": "refuted", "neutral": "not_enough_info"}
    s1 = (folder / "snli" / f"s1.{split}").read_text(encoding="utf-8").splitlines()
    s2 = (folder / "snli" / f"s2.{split}").read_text(encoding="utf-8").splitlines()
    labels = (folder / "snli" / f"labels.{split}").read_text(encoding="utf-8").splitlines()
    return [
        {"claim": detokenize(h), "evidence": detokenize(p), "label": names[lab.strip()]}
        for p, h, lab in zip(s1, s2, labels, strict=True)
        if lab.strip() in names
    ]


def fever_symmetric(folder: Path, split: str) -> list[dict[str, Any]]:
    """FEVER-Symmetric ``dev``, ``test`` (v0.2) or ``generated`` (v0.1): SUPPORTS/REFUTES."""
    names = {"SUPPORTS": "supported", "REFUTES": "refuted"}
    out = []
    path = folder / "fever_symmetric" / f"fever_symmetric_{split}.jsonl"
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        r = json.loads(line)
        evidence = r.get("evidence") or r.get("evidence_sentence") or ""
        label = r.get("gold_label") or r.get("label")
        out.append(
            {
                "claim": detokenize(r["claim"]),
                "evidence": detokenize(evidence),
                "label": names[label],
            }
        )
    return out


def wice(folder: Path, split: str) -> list[dict[str, Any]]:
    """WiCE claims ``dev`` or ``test``: supported / not_supported (→ not enough info);
    partially supported claims are left out (neither verdict fits them)."""
    names = {"supported": "supported", "not_supported": "not_enough_info"}
    out = []
    path = folder / "wice" / f"claim_{split}.jsonl"
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        r = json.loads(line)
        if r["label"] not in names:
            continue
        ev = r["evidence"]
        if isinstance(ev, str):
            ev = ast.literal_eval(ev)
        out.append({"claim": r["claim"], "evidence": " ".join(ev), "label": names[r["label"]]})
    return out


def summedits(folder: Path, split: str) -> list[dict[str, Any]]:
    """SummEdits ``evaluation`` or ``test`` records: the summary as claim, the document as
    evidence; consistent → supported, inconsistent → refuted; ``group`` is the domain."""
    out = []
    for path in sorted((folder / "summedits").glob("summedits_*.json")):
        domain = path.stem.removeprefix("summedits_")
        for r in json.loads(path.read_text(encoding="utf-8")):
            if r["split"] != split:
                continue
            out.append(
                {
                    "claim": r["summary"],
                    "evidence": r["doc"],
                    "label": "supported" if str(r["label"]) == "1" else "refuted",
                    "group": domain,
                }
            )
    return out


def split_off(
    rows: list[dict[str, Any]], n: int, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(rest, held)``: ``n`` rows held out at random (seeded)."""
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    held = set(order[:n])
    return [r for i, r in enumerate(rows) if i not in held], [rows[i] for i in sorted(held)]


def stratified_sample(
    rows: list[dict[str, Any]], n: int, seed: int, key: str = "group"
) -> list[dict[str, Any]]:
    """``n`` rows at random, in proportion to each ``key`` value and label (seeded)."""
    if n >= len(rows):
        return list(rows)
    rng = random.Random(seed)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((str(r.get(key, "")), r["label"]), []).append(r)
    out = []
    for _, g in sorted(groups.items()):
        out += rng.sample(g, max(1, round(n * len(g) / len(rows))))
    return out
