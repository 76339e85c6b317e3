"""``text`` injection: the evidence is verbalized into the prompt when examples are built."""

from __future__ import annotations

from grounded.injection.base import Injection


class TextInjection(Injection):
    """Evidence sentences written before the question (see :func:`grounded.data.format_prompt`).

    Nothing happens at the embedding level; the mode only tells the data builder and the
    generator to write the evidence lines.
    """

    writes_text = True
