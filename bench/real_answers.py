"""Generate unlabelled rows for ``tests/data/real_answers.jsonl``: real answers of a base.

The questions are the evaluator's own (:func:`grounded.evaluation.questions.build_questions`
on the groups :func:`grounded.evaluation.runner.evaluate` would use), answered greedily by
the untrained base zero-shot (``base``) and with retrieved facts in its prompt (``rag``),
with the prompt format the base records (``auto``: its chat template). Each row keeps the
generation exactly as decoded (before :func:`grounded.answers.parse_generation`) and the
KB's objects of the pair, so a person can label it by reading. Labels are added by hand.

Usage::

    python -m grounded kb build --preset countries --out /tmp/ans/kb
    python bench/real_answers.py /tmp/ans/kb /work/cache/smollm2-hf /tmp/ans/rows.jsonl \
        --per-group 45
    python bench/real_answers.py KB BASE OUT --variants --model runs/m   # a trained model
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from grounded.data.groups import build_groups
    from grounded.evaluation.questions import build_questions
    from grounded.kb import KnowledgeBase
    from grounded.model.artifacts import load_pretrain_split
    from grounded.model.generate import GroundedModel, generate_texts

    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("kb")
    p.add_argument("base")
    p.add_argument("out")
    p.add_argument("--per-group", type=int, default=45)
    p.add_argument("--variants", nargs="*", default=["base", "rag"])
    p.add_argument("--model", default="", help="a trained model folder, answered as `trained`")
    p.add_argument("--max-new-tokens", type=int, default=24)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    kb = KnowledgeBase.load(args.kb)
    if args.model:  # the trained model's own groups, as the evaluator uses them
        from grounded.evaluation.runner import shared_groups

        groups = shared_groups({"trained": args.model})
    else:
        groups = build_groups(kb, load_pretrain_split(args.base), seed=args.seed)
    questions = build_questions(kb.graph, groups, per_group=args.per_group, seed=args.seed)
    rows = []
    variants = list(args.variants) + (["trained"] if args.model else [])
    for variant in variants:
        if variant == "trained":
            model = GroundedModel.from_pretrained(args.model, kb, base=args.base)
        else:
            model = GroundedModel.from_base(args.base, kb, text_evidence=variant == "rag")
        examples, _ = model.examples([q.question for q in questions])
        texts = generate_texts(
            model.model, model.batcher, examples, max_new_tokens=args.max_new_tokens
        )
        for q, text in zip(questions, texts, strict=True):
            rows.append(
                {
                    "source": variant,
                    "group": q.group,
                    "question": q.question,
                    "subject": q.subject,
                    "relation": q.relation,
                    "kb_objects": list(q.gold),
                    "answer": text,
                }
            )
        del model
    Path(args.out).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    print(f"wrote {len(rows)} rows to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
