"""Evidence longer than the checker's window: overlapping chunks, and how their verdicts combine.

A cross-encoder reads ``[CLS] claim [SEP] evidence [SEP]`` within ``max_length`` tokens.
Evidence that does not fit is cut into chunks of whole sentences (a sentence longer than
the window into token windows), consecutive chunks sharing their boundary sentence (or a
quarter of a window), so a fact split across a boundary is read whole by one of them. Each
(claim, chunk) pair is judged and the verdicts combine as in MiniCheck and AlignScore
(:func:`combine_chunks`): the claim is supported when some chunk supports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from kg.text import split_sentences

MIN_EVIDENCE_TOKENS = 32
"""Evidence tokens a chunk keeps at least, however long the claim (the claim is cut first)."""


def special_tokens(tokenizer: Any) -> int:
    """Tokens the tokenizer adds around a pair (3 for BERT: [CLS] a [SEP] b [SEP])."""
    return int(tokenizer.num_special_tokens_to_add(pair=True))


def evidence_budget(tokenizer: Any, claim_tokens: int, max_length: int) -> int:
    """Evidence tokens that fit beside a claim of ``claim_tokens`` tokens."""
    return max(max_length - special_tokens(tokenizer) - claim_tokens, MIN_EVIDENCE_TOKENS)


def _token_windows(tokenizer: Any, text: str, budget: int) -> list[str]:
    """``text`` cut at token boundaries into windows of ``budget`` tokens, overlapping by a
    quarter of a window."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    offsets = enc["offset_mapping"]
    if len(offsets) <= budget:
        return [text]
    stride = max(budget - budget // 4, 1)
    out = []
    for start in range(0, len(offsets), stride):
        part = offsets[start : start + budget]
        out.append(text[part[0][0] : part[-1][1]].strip())
        if start + budget >= len(offsets):
            break
    return [t for t in out if t]


def chunk_evidence(tokenizer: Any, claim: str, evidence: str, max_length: int) -> list[str]:
    """``evidence`` as chunks that each fit beside ``claim`` in ``max_length`` tokens.

    Evidence that fits is returned whole (one chunk). Otherwise sentences
    (:func:`~kg.text.split_sentences`) are packed greedily into chunks of at
    most the evidence budget; the next chunk starts again at the last sentence of the one
    before (an overlap of one sentence), unless that sentence alone fills a chunk. A sentence
    longer than the budget becomes token windows overlapping by a quarter of a window.

    Args:
        tokenizer: the checker's (fast) tokenizer.
        claim: the claim (its length sets the evidence budget; a claim that leaves fewer
            than :data:`MIN_EVIDENCE_TOKENS` is cut when the pair is encoded).
        evidence: any text.
        max_length: the checker's window in tokens.

    Returns:
        At least one chunk (``[evidence]`` when it fits or is empty).

    Example:
        >>> from transformers import AutoTokenizer  # doctest: +SKIP
        >>> chunk_evidence(tok, "Claim.", "One. Two. " * 200, 64)[:1]  # doctest: +SKIP
        ['One. Two. One. Two. ...']
    """
    claim_tokens = len(tokenizer(claim, add_special_tokens=False)["input_ids"])
    budget = evidence_budget(tokenizer, claim_tokens, max_length)
    if not evidence.strip():
        return [evidence]
    sizes_all = tokenizer(evidence, add_special_tokens=False)["input_ids"]
    if len(sizes_all) <= budget:
        return [evidence]
    spans = split_sentences(evidence, max_chars=max(20, len(evidence)), keep_numbers=True)
    sentences = [evidence[a:b] for a, b in spans] or [evidence]
    sizes = [len(ids) for ids in tokenizer(sentences, add_special_tokens=False)["input_ids"]]
    pieces: list[tuple[str, int]] = []
    for sent, size in zip(sentences, sizes, strict=True):
        if size <= budget:
            pieces.append((sent, size))
        else:
            for w in _token_windows(tokenizer, sent, budget):
                pieces.append((w, budget))
    chunks: list[str] = []
    i = 0
    while i < len(pieces):
        used, j = 0, i
        while j < len(pieces) and used + pieces[j][1] + (j > i) <= budget:
            used += pieces[j][1] + (j > i)
            j += 1
        j = max(j, i + 1)
        chunks.append(" ".join(p for p, _ in pieces[i:j]))
        if j >= len(pieces):
            break
        # overlap: start again at the last sentence, unless it was this chunk's only one
        i = j - 1 if j - 1 > i else j
    return chunks


def combine_chunks(probs: np.ndarray) -> np.ndarray:
    """One verdict distribution from a claim's chunk distributions, in ``LABELS`` order.

    ``supported`` is the largest P(supported) over chunks (a claim is supported when some
    chunk supports it); ``refuted`` is P(refuted) of the chunk most confident in refutation,
    capped at ``1 - supported``; ``not_enough_info`` is the rest. A chunk that says nothing
    about the claim thus neither dilutes support found elsewhere nor hides a contradiction.
    With one chunk this returns its distribution unchanged.

    Args:
        probs: (n_chunks, 3) rows in ``LABELS`` order (supported, refuted, not enough info).

    Returns:
        (3,) probabilities summing to 1.

    Example:
        >>> combine_chunks(np.array([[0.1, 0.1, 0.8], [0.7, 0.2, 0.1]])).round(2).tolist()
        [0.7, 0.2, 0.1]
        >>> combine_chunks(np.array([[0.05, 0.9, 0.05], [0.6, 0.1, 0.3]])).round(2).tolist()
        [0.6, 0.4, 0.0]
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.shape[0] == 1:
        return p[0].copy()
    sup = float(p[:, 0].max())
    ref = min(float(p[:, 1].max()), 1.0 - sup)
    return np.array([sup, ref, max(1.0 - sup - ref, 0.0)])


def weakest_sentence(probs: np.ndarray) -> np.ndarray:
    """One distribution for a multi-sentence claim: that of its least supported sentence.

    A claim (a summary, an answer of several sentences) is supported only when each of its
    sentences is; the sentence with the lowest P(supported) speaks for the claim.

    Args:
        probs: (n_sentences, 3) rows in ``LABELS`` order.

    Example:
        >>> weakest_sentence(np.array([[0.9, 0.05, 0.05], [0.2, 0.7, 0.1]])).tolist()
        [0.2, 0.7, 0.1]
    """
    p = np.asarray(probs, dtype=np.float64)
    return p[int(p[:, 0].argmin())].copy()


def claim_sentences(claim: str) -> list[str]:
    """The sentences of ``claim`` (the claim itself when it has one or none)."""
    spans = split_sentences(claim, max_chars=max(20, len(claim)), keep_numbers=True)
    out = [claim[a:b] for a, b in spans]
    return out if len(out) > 1 else [claim]


def most_overlapping(claim: str, chunks: Sequence[str]) -> int:
    """Index of the chunk sharing the most distinct lowercased words with ``claim``.

    Used for training pairs whose evidence exceeds the window: the chunk a reader would
    look at (ties: the first).

    Example:
        >>> most_overlapping("Paris is in France", ["Rome lies in Italy.", "Paris, France."])
        1
    """
    words = set(_words(claim))
    scores = [len(words & set(_words(c))) for c in chunks]
    return int(np.argmax(scores)) if scores else 0


def _words(text: str) -> list[str]:
    import re

    return re.findall(r"\w+", text.lower())
