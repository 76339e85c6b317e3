"""The one prompt format, shared by pretraining, training, generation, feedback and evaluation
(the answer format is :mod:`grounded.answers`).

The default base model was pretrained on ``Question: {question}\\nAnswer: {answer}``; the
grounded prompt keeps that format and puts retrieved evidence before it (text injection)::

    Evidence:
    - The capital of Mongolia is Ulaanbaatar.
    - The capital of China is Beijing.
    Question: What is the capital of Mongolia?
    Answer: Ulaanbaatar.

The target is everything after ``Answer:`` (a leading space, the objects, a full stop) and
the tokenizer's end-of-sequence token.
"""

from __future__ import annotations

from collections.abc import Sequence

EVIDENCE_HEADER = "Evidence:"
QUESTION_PREFIX = "Question: "
ANSWER_PREFIX = "Answer:"

__all__ = [
    "ANSWER_PREFIX",
    "EVIDENCE_HEADER",
    "QUESTION_PREFIX",
    "format_example",
    "format_prompt",
    "question_offset",
]


def format_prompt(question: str, evidence: Sequence[str] | None = None) -> str:
    """The model's prompt for ``question``, with ``evidence`` lines first when given.

    Example:
        >>> print(format_prompt("What is the capital of Mongolia?", ["The capital of ..."]))
        Evidence:
        - The capital of ...
        Question: What is the capital of Mongolia?
        Answer:
    """
    lines = []
    if evidence:
        lines.append(EVIDENCE_HEADER)
        lines.extend(f"- {' '.join(text.split())}" for text in evidence)
    lines.append(f"{QUESTION_PREFIX}{question}")
    lines.append(ANSWER_PREFIX)
    return "\n".join(lines)


def question_offset(prompt: str) -> int:
    """Character offset of the question inside a prompt written by :func:`format_prompt`."""
    marker = "\n" + QUESTION_PREFIX
    i = prompt.rfind(marker)
    return i + len(marker) if i >= 0 else len(QUESTION_PREFIX)


def format_example(question: str, answer: str, evidence: Sequence[str] | None = None) -> str:
    """A whole example: the prompt of :func:`format_prompt` followed by `` {answer}``.

    Example:
        >>> format_example("What is the capital of Mongolia?", "Ulaanbaatar.")
        'Question: What is the capital of Mongolia?\\nAnswer: Ulaanbaatar.'
    """
    return f"{format_prompt(question, evidence)} {answer}"
