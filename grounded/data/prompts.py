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

That is the ``plain`` prompt format. With the ``chat`` format (the default for a tokenizer
that has a chat template, e.g. an instruct model) the same text without its ``Answer:`` line
is the user's turn of the tokenizer's own template, and the answer is the assistant's turn,
ending in the template's end-of-turn token (:class:`ChatFrame`). Training and generation
build prompts the same way, and ``grounding.json`` records the format a model was trained
with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from grounded.answers import ABSTAIN

EVIDENCE_HEADER = "Evidence:"
QUESTION_PREFIX = "Question: "
ANSWER_PREFIX = "Answer:"

PROMPT_FORMATS: tuple[str, ...] = ("auto", "plain", "chat")
"""``auto``: ``chat`` when the tokenizer has a chat template, else ``plain``."""
SYSTEM_PROMPT = f"Answer from the evidence, or say: {ABSTAIN}"
"""The system turn of the chat format: shorter than SmolLM2's default (13 tokens against 16);
training teaches the short answer style (``format_answer``, or the abstention). Measured on
SmolLM2-135M-Instruct: "Answer briefly from the evidence, ..." made it answer "What is the
capital of France?" closed-book in French gibberish ("Le Grand Garou, la France, ..."), and
"Answer in a few words ..." wordings cost more tokens than the default turn."""

__all__ = [
    "ANSWER_PREFIX",
    "EVIDENCE_HEADER",
    "PROMPT_FORMATS",
    "QUESTION_PREFIX",
    "SYSTEM_PROMPT",
    "ChatFrame",
    "chat_content",
    "format_example",
    "format_prompt",
    "question_offset",
    "resolve_prompt_format",
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


def resolve_prompt_format(setting: str, tokenizer: Any) -> str:
    """The prompt format (``plain`` or ``chat``) that ``setting`` means for ``tokenizer``.

    Raises:
        ValueError: ``setting`` is not one of :data:`PROMPT_FORMATS`, or it is ``chat`` and
            the tokenizer has no chat template.
    """
    if setting not in PROMPT_FORMATS:
        raise ValueError(f"`prompt_format` must be one of {list(PROMPT_FORMATS)}, got {setting!r}")
    has_template = bool(getattr(tokenizer, "chat_template", None))
    if setting == "chat" and not has_template:
        raise ValueError(
            "`prompt_format` is 'chat' but the base model's tokenizer has no chat template; "
            "use `plain` (or `auto`), or add a `chat_template` to its tokenizer_config.json"
        )
    if setting == "auto":
        return "chat" if has_template else "plain"
    return setting


def chat_content(prompt: str) -> str:
    """The user's turn for a :func:`format_prompt` prompt: the prompt without ``Answer:``.

    Example:
        >>> chat_content(format_prompt("Where is Chad?"))
        'Question: Where is Chad?'
    """
    tail = "\n" + ANSWER_PREFIX
    return prompt[: -len(tail)] if prompt.endswith(tail) else prompt


_USER = "grounded-user-turn-text"
_ANSWER = "grounded-assistant-turn-text"


@dataclass(frozen=True)
class ChatFrame:
    """A tokenizer's chat template around one user turn and the assistant's answer.

    ``head + user text + middle + answer + end`` is what the template renders for the
    conversation; ``middle`` ends where the assistant's words begin (after any header the
    template puts there, such as an empty thinking block), so a prompt is ``head + user
    text + middle`` for training and generation alike.

    Attributes:
        head: text before the user's turn (system prompt, role markers, bos).
        middle: text between the user's turn and the answer.
        end: text after the answer (the end-of-turn marker, then whatever follows it).
        system: the system prompt in ``head``; None when none was given (the template may
            still write a default one).
    """

    head: str
    middle: str
    end: str
    system: str | None = None

    @classmethod
    def from_tokenizer(cls, tokenizer: Any, system: str | None = None) -> ChatFrame:
        """Render a two-turn conversation with marker texts and cut it around them.

        Args:
            tokenizer: a tokenizer with a chat template.
            system: a system prompt to open the conversation with (None or ``""``: none,
                the template's default). A template that refuses a system turn, fails on
                it or leaves its text out gets none: ``system`` of the frame is then None.

        Raises:
            ValueError: the tokenizer has no chat template, the template fails, or it does
                not reproduce the turns' text (it rewrites messages): use ``plain``.

        Example:
            >>> from types import SimpleNamespace
            >>> tok = SimpleNamespace(chat_template="x", apply_chat_template=lambda m, **k:
            ...     "".join(f"<{x['role']}>{x['content']}</>" for x in m))
            >>> frame = ChatFrame.from_tokenizer(tok, "Be brief.")
            >>> frame.head, frame.middle, frame.system
            ('<system>Be brief.</><user>', '</><assistant>', 'Be brief.')
        """
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError("the tokenizer has no chat template; use `prompt_format` plain")
        if system:
            try:
                frame = cls._render(tokenizer, [{"role": "system", "content": system}])
            except ValueError:
                frame = None  # a template without a system role: none, as recorded
            if frame is not None and frame.head.count(system) == 1:
                return cls(frame.head, frame.middle, frame.end, system)
        return cls._render(tokenizer, [])

    @classmethod
    def _render(cls, tokenizer: Any, first: list[dict[str, str]]) -> ChatFrame:
        messages = [
            *first,
            {"role": "user", "content": _USER},
            {"role": "assistant", "content": _ANSWER},
        ]
        try:
            text = tokenizer.apply_chat_template(messages, tokenize=False)
        except Exception as e:  # jinja errors come in many types
            raise ValueError(
                f"the tokenizer's chat template failed on a user + assistant turn ({e}); use "
                "`prompt_format` plain"
            ) from e
        u, a = text.find(_USER), text.find(_ANSWER)
        if u < 0 or a < u or text.count(_USER) != 1 or text.count(_ANSWER) != 1:
            raise ValueError(
                "the tokenizer's chat template does not reproduce the turns' text, so prompts "
                "cannot be built from it; use `prompt_format` plain"
            )
        return cls(text[:u], text[u + len(_USER) : a], text[a + len(_ANSWER) :])

    @property
    def offset(self) -> int:
        """Characters before the user's text: a span in the plain prompt moves by this."""
        return len(self.head)

    def prompt(self, prompt: str) -> str:
        """The chat prompt for a :func:`format_prompt` prompt (ends where the answer starts)."""
        return f"{self.head}{chat_content(prompt)}{self.middle}"

    def example(self, question: str, answer: str, evidence: Sequence[str] | None = None) -> str:
        """A whole example as text: the chat prompt, the answer and the end of the turn."""
        return f"{self.prompt(format_prompt(question, evidence))}{answer}{self.end}"
