"""Reading (claim, evidence[, label]) pair files: what ``grounded factcheck score`` judges and
``grounded factcheck train --pairs`` learns from.

A pair file is JSONL, one object per line::

    {"claim": "Paris is in France.", "evidence": "Paris is the capital of France."}
    {"claim": "...", "evidence": ["first passage", "second passage"], "label": "SUPPORTS"}

``evidence`` is a string or a list of strings (joined, in order). ``label`` names a verdict
in any of the spellings :func:`~grounded.factcheck.labels.canonical_label` accepts
(``supported``/``SUPPORTS``/``entailment``, ``refuted``/``REFUTES``/``contradiction``,
``not_enough_info``/``NOT ENOUGH INFO``/``neutral``). Other fields (``id``...) are kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grounded.factcheck.labels import _LABEL_ALIASES, canonical_label, join_evidence
from grounded.types import Label
from kg import SourceFileError
from kg.loaders import jsonl_objects


@dataclass(frozen=True)
class PairRecord:
    """One line of a pair file.

    Attributes:
        claim: the claim.
        evidence: the evidence as one text (a list joined with spaces).
        label: the verdict, when the line gives one.
        line: the line number (1-based).
        extra: the line's other fields.
    """

    claim: str
    evidence: str
    label: Label | None
    line: int
    extra: dict[str, Any] = field(default_factory=dict)


def read_pairs(
    path: str | Path,
    *,
    require_label: bool = False,
    claim_field: str = "claim",
    evidence_field: str = "evidence",
    label_field: str = "label",
) -> list[PairRecord]:
    """Every pair of a JSONL pair file, in order.

    Args:
        path: the file.
        require_label: every line must carry a label (training).
        claim_field, evidence_field, label_field: field names.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        kg.SourceFileError: bad lines, each named by file and line with the fix (all at once):
            invalid JSON, a missing or non-string claim, evidence that is not a string or a
            list of strings, an unknown label name, a missing label when required; a
            ``ValueError``.

    Example:
        >>> import json, tempfile
        >>> f = Path(tempfile.mkdtemp()) / "pairs.jsonl"
        >>> _ = f.write_text(json.dumps({"claim": "A.", "evidence": ["B.", "C."],
        ...                              "label": "REFUTES"}) + "\\n")
        >>> r = read_pairs(f)[0]
        >>> r.evidence, r.label, r.line
        ('B. C.', 'refuted', 1)
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pair file {path} does not exist")
    errors: list[tuple[str, int, str]] = []
    out: list[PairRecord] = []
    names = sorted(_LABEL_ALIASES)
    for n, obj in jsonl_objects(path, errors):
        claim = obj.get(claim_field)
        evidence = obj.get(evidence_field)
        label_name = obj.get(label_field)
        bad = False
        if not isinstance(claim, str) or not claim.strip():
            errors.append(
                (str(path), n, f"`{claim_field}` must be a non-empty string, got {claim!r:.60}")
            )
            bad = True
        if isinstance(evidence, list) and all(isinstance(e, str) for e in evidence):
            evidence = join_evidence(evidence)
        elif not isinstance(evidence, str):
            errors.append(
                (
                    str(path),
                    n,
                    f"`{evidence_field}` must be a string or a list of strings, got "
                    f"{evidence!r:.60}",
                )
            )
            bad = True
        label: Label | None = None
        if label_name is None:
            if require_label:
                errors.append(
                    (str(path), n, f"no `{label_field}`; training pairs need one of {names}")
                )
                bad = True
        else:
            label = canonical_label(str(label_name))
            if label is None:
                errors.append(
                    (str(path), n, f"unknown `{label_field}` {label_name!r}; use one of {names}")
                )
                bad = True
        if not bad:
            extra = {
                k: v for k, v in obj.items() if k not in (claim_field, evidence_field, label_field)
            }
            out.append(PairRecord(claim, evidence, label, n, extra))
    if errors:
        raise SourceFileError(errors)
    return out
