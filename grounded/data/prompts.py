"""The prompt and answer format shared by training, generation, feedback and evaluation.

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

from grounded.types import ABSTAIN

EVIDENCE_HEADER = "Evidence:"
QUESTION_PREFIX = "Question: "
ANSWER_PREFIX = "Answer:"

__all__ = [
    "ABSTAIN",
    "ANSWER_PREFIX",
    "EVIDENCE_HEADER",
    "QUESTION_PREFIX",
    "format_answer",
    "format_prompt",
    "parse_generation",
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


def format_answer(objects: Sequence[str]) -> str:
    """The target text of an answer naming ``objects`` (``ABSTAIN`` when there are none).

    Items are joined as the evaluator splits them (``A, B and C``), ending in a full stop.

    Example:
        >>> format_answer(["Zulu", "English"]), format_answer([])
        ('Zulu and English.', "I don't know.")
    """
    if not objects:
        return ABSTAIN
    listed = objects[0] if len(objects) == 1 else ", ".join(objects[:-1]) + " and " + objects[-1]
    return listed if listed.endswith(".") else listed + "."


def parse_generation(text: str) -> str:
    """The answer in a generated continuation: its first line, trimmed.

    Example:
        >>> parse_generation(" Ulaanbaatar.\\nQuestion: ...")
        'Ulaanbaatar.'
    """
    return text.strip().split("\n", 1)[0].strip()
