"""The checker on any (claim, evidence) pairs: no knowledge base, chunked evidence,
FactCC-style transformations, labelled pair files, calibration, and training on free text."""

from __future__ import annotations

import contextlib
import io
import json
import random
import types

import numpy as np
import pytest

from grounded.factcheck import chunking
from grounded.factcheck.checker import FactChecker
from grounded.factcheck.decision import decide
from grounded.factcheck.labels import apply_biases
from grounded.factcheck.pairs import read_pairs
from grounded.factcheck.transforms import (
    TRANSFORMS,
    Corpus,
    date_swap,
    entity_swap,
    negation,
    number_swap,
    other_passage,
    paraphrase,
    read_texts,
    sentence_removed,
    transform_pairs,
)
from grounded.types import LABELS
from kg import KnowledgeGraph, Relation, Schema, SourceFileError, Triple

pytestmark = pytest.mark.usefixtures("one_thread")


# -- a checker whose verdict a test controls -----------------------------------------------------
class KeywordModel:
    """A stand-in classifier: supported when the evidence segment holds ``support`` token,
    refuted when it holds ``refute``, else not enough info. Lets a test know which chunk a
    verdict came from."""

    def __init__(self, tokenizer, support: str, refute: str) -> None:
        import torch

        self.support = tokenizer.convert_tokens_to_ids(support)
        self.refute = tokenizer.convert_tokens_to_ids(refute)
        self.config = types.SimpleNamespace(id2label=dict(enumerate(LABELS)))
        self._p = torch.nn.Parameter(torch.zeros(1))
        self.seen: list[int] = []

    def parameters(self):
        yield self._p

    def eval(self):
        return self

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None):
        import torch

        evidence = (token_type_ids == 1) & (attention_mask == 1)
        self.seen.append(int(input_ids.shape[1]))
        sup = ((input_ids == self.support) & evidence).any(dim=1).float()
        ref = ((input_ids == self.refute) & evidence).any(dim=1).float()
        logits = torch.stack([6 * sup - 3, 6 * ref - 3, torch.zeros_like(sup)], dim=1)
        return types.SimpleNamespace(logits=logits)


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from index import default_encoder_path

    return AutoTokenizer.from_pretrained(default_encoder_path(), local_files_only=True)


@pytest.fixture(scope="module")
def keyword_checker(tokenizer):
    return FactChecker(KeywordModel(tokenizer, "zebra", "penguin"), tokenizer, max_length=48)


FILLER = [f"Sentence number {i} talks about the weather in a quiet town." for i in range(30)]


def test_predict_pairs_without_a_kb(tiny_bert_dir):
    checker = FactChecker.from_base(tiny_bert_dir, max_length=64, seed=0)
    pairs = [
        ("Paris is in France.", "Paris is the capital of France."),
        ("Paris is in Spain.", ["Madrid is in Spain.", "Paris is in France."]),
    ]
    preds = checker.predict(pairs)
    assert preds.probabilities.shape == (2, 3)
    np.testing.assert_allclose(preds.probabilities.sum(axis=1), 1.0)
    # labels come from the decision rule, top_labels from the argmax
    assert preds.top_labels == [LABELS[i] for i in preds.probabilities.argmax(axis=1)]
    assert preds.labels == [d.label for d in decide(preds.probabilities, checker.rule)]
    assert preds[1].probabilities == dict(zip(LABELS, preds.probabilities[1], strict=True))
    # the list evidence is read joined; the two-list form gives the same numbers
    same = checker.predict(
        [p[0] for p in pairs], [pairs[0][1], "Madrid is in Spain. Paris is in France."]
    )
    np.testing.assert_allclose(same.probabilities, preds.probabilities)
    with pytest.raises(ValueError, match=r"`pairs\[0\]` must be a \(claim, evidence\) pair"):
        checker.predict(["just a claim"])
    with pytest.raises(ValueError, match=r"`pairs\[0\]`: evidence must be a string"):
        checker.predict([("claim", 3)])
    assert checker.predict([]).probabilities.shape == (0, 3)


def test_chunks_fit_the_window_cover_the_evidence_and_overlap(tokenizer):
    claim = "The zebra lives in Kenya."
    evidence = " ".join(FILLER)
    chunks = chunking.chunk_evidence(tokenizer, claim, evidence, 48)
    assert len(chunks) > 5
    for c in chunks:
        assert len(tokenizer(claim, c)["input_ids"]) <= 48
    assert all(s in " ".join(chunks) for s in FILLER)
    # consecutive chunks share their boundary sentence
    assert chunks[0].split(". ")[-1].rstrip(".") in chunks[1]
    # evidence that fits stays whole
    assert chunking.chunk_evidence(tokenizer, claim, FILLER[0], 48) == [FILLER[0]]
    # a sentence longer than the window becomes token windows
    long = "word " * 200
    windows = chunking.chunk_evidence(tokenizer, claim, long, 48)
    assert len(windows) > 3 and all(len(tokenizer(claim, w)["input_ids"]) <= 48 for w in windows)


def test_the_best_chunk_decides_not_the_first_window(keyword_checker):
    claim = "The zebra lives in Kenya."
    late = " ".join(FILLER) + " A zebra was seen in Kenya."
    preds = keyword_checker.predict([(claim, late), (claim, " ".join(FILLER))])
    assert preds.chunks[0] > 5
    assert preds.labels == ["supported", "not_enough_info"]
    assert preds.probabilities[0, 0] > 0.9
    # a refutation in one chunk is not hidden by the chunks that say nothing
    refuting = " ".join(FILLER[:20]) + " A penguin lives there instead. " + " ".join(FILLER[20:])
    assert keyword_checker.predict([(claim, refuting)]).labels == ["refuted"]
    # every forward pass fits the window: nothing was cut to the first 48 tokens
    assert max(keyword_checker.model.seen) <= 48


def test_combine_chunks_and_weakest_sentence_by_hand():
    p = np.array([[0.1, 0.1, 0.8], [0.7, 0.2, 0.1], [0.2, 0.5, 0.3]])
    np.testing.assert_allclose(chunking.combine_chunks(p), [0.7, 0.3, 0.0])
    np.testing.assert_allclose(chunking.combine_chunks(p[:1]), p[0])
    s = np.array([[0.9, 0.05, 0.05], [0.3, 0.3, 0.4]])
    np.testing.assert_allclose(chunking.weakest_sentence(s), [0.3, 0.3, 0.4])


def test_split_claims_takes_the_least_supported_sentence(keyword_checker):
    evidence = "A zebra grazes here."
    claim = "The zebra grazes. The lion sleeps."
    whole = keyword_checker.predict([(claim, evidence)])
    split = keyword_checker.predict([(claim, evidence)], split_claims=True)
    assert whole.labels == ["supported"]  # the keyword model reads the evidence only
    assert split.labels == ["supported"]
    # a second sentence judged against evidence that never supports it
    ev2 = "Nothing here."
    assert keyword_checker.predict([("The zebra grazes. It sleeps.", ev2)], split_claims=True)[
        0
    ].label == ("not_enough_info")


# -- transformations, each on a hand-written sentence --------------------------------------------
def _one(text: str, fn, seed: int = 0, **kw):
    corpus = Corpus.from_texts([text], **kw)
    return fn(corpus.sentences()[0], corpus, random.Random(seed))


def test_paraphrase_moves_a_leading_phrase_and_drops_an_aside():
    t = _one("In 1998, the museum opened its new wing.", paraphrase)
    assert (t.claim, t.label, t.kind) == (
        "The museum opened its new wing in 1998.",
        "supported",
        "paraphrase",
    )
    assert t.evidence == "In 1998, the museum opened its new wing."
    t = _one("The river (the longest in the region) floods every spring.", paraphrase)
    assert t.claim == "The river floods every spring."
    assert _one("Cats sleep a lot today.", paraphrase) is None


def test_entity_swap_uses_a_same_type_entity_of_the_graph():
    schema = Schema([Relation("capital", "The capital of {subject} is {object}.",
                              subject_type="country", object_type="city")])  # fmt: skip
    graph = KnowledgeGraph(
        [Triple("France", "capital", "Paris"), Triple("Italy", "capital", "Rome"),
         Triple("Spain", "capital", "Madrid")], schema)  # fmt: skip
    t = _one("Paris hosted the summit of the leaders.", entity_swap, graph=graph)
    assert t.label == "refuted" and t.kind == "entity_swap"
    assert t.claim in {"Rome hosted the summit of the leaders.",
                       "Madrid hosted the summit of the leaders."}  # fmt: skip
    # without a graph: a proper name from elsewhere with as many words
    corpus = Corpus.from_texts(["Ada Lovelace wrote the first program.", "Alan Turing ran far."])
    t = entity_swap(corpus.sentences()[0], corpus, random.Random(0))
    assert t.claim == "Alan Turing wrote the first program."


def test_number_and_date_swaps_change_only_the_number():
    t = _one("The bridge is 1,200 metres long.", number_swap, seed=1)
    assert t.label == "refuted" and t.claim != t.source
    assert t.claim.startswith("The bridge is ") and t.claim.endswith(" metres long.")
    assert "1,200" not in t.claim
    assert _one("The bridge opened in 1994 to traffic.", number_swap) is None  # a year
    t = _one("The bridge opened in 1994 to traffic.", date_swap)
    year = int(t.claim.split()[4])
    assert t.label == "refuted" and year != 1994 and 1964 <= year <= 2024
    t = _one("The treaty was signed in March 1994 in Lisbon.", date_swap)
    assert t.claim == "The treaty was signed in January 1994 in Lisbon."


def test_negation_adds_or_removes_a_negation():
    assert _one("The museum was opened by the mayor.", negation).claim == (
        "The museum was not opened by the mayor."
    )
    assert _one("The company has three offices abroad.", negation).claim == (
        "The company does not have three offices abroad."
    )
    assert _one("The engine was never built by Babbage.", negation).claim == (
        "The engine was built by Babbage."
    )
    assert _one("The team did not win the final.", negation).claim == "The team did win the final."
    assert _one("Cats sleep a lot today.", negation) is None


def test_not_enough_info_transformations():
    corpus = Corpus.from_texts(
        ["Ada Lovelace wrote notes on the engine. The engine was never built.",
         "Alan Turing wrote a paper on computable numbers.",
         "Bananas grow in warm and humid places."])  # fmt: skip
    first = corpus.sentences()[0]
    t = other_passage(first, corpus, random.Random(0))
    # the nearest miss: the sentence sharing words ("wrote", "on") with the passage
    assert t.claim == "Alan Turing wrote a paper on computable numbers."
    assert t.label == "not_enough_info" and "Ada Lovelace" in t.evidence
    t = sentence_removed(first, corpus, random.Random(0))
    assert (t.claim, t.evidence) == (
        "Ada Lovelace wrote notes on the engine.",
        "The engine was never built.",
    )


def test_pronouns_resolve_to_the_passage_entity_or_the_sentence_is_skipped():
    corpus = Corpus.from_texts(["Its capital is Kabul."], [("Afghanistan",)])
    assert [s.text for s in corpus.sentences()] == ["Afghanistan's capital is Kabul."]
    assert Corpus.from_texts(["Its capital is Kabul."]).sentences() == []


def test_transform_pairs_is_seeded_and_covers_all_labels():
    texts = [
        "In 2006, Ada Lovelace won the prize in Paris. The prize was worth 5,000 pounds.",
        "The museum was opened by the mayor in March 1994. It has 3 floors.",
        "Alan Turing wrote a paper on computable numbers in 1936.",
    ]
    a = transform_pairs(Corpus.from_texts(texts), per_sentence=7, seed=3)
    b = transform_pairs(Corpus.from_texts(texts), per_sentence=7, seed=3)
    assert a == b
    assert {t.label for t in a} == set(LABELS)
    assert {t.kind for t in a} <= set(TRANSFORMS)
    with pytest.raises(ValueError, match="`transforms` names"):
        transform_pairs(Corpus.from_texts(texts), transforms=["shuffle"])


def test_read_texts_splits_paragraphs_and_reads_jsonl(tmp_path):
    (tmp_path / "a.txt").write_text("First line\ncontinues.\n\nSecond paragraph.\n")
    (tmp_path / "b.jsonl").write_text(json.dumps({"text": "From JSONL."}) + "\n")
    assert read_texts(tmp_path) == ["First line continues.", "Second paragraph.", "From JSONL."]
    (tmp_path / "c.jsonl").write_text('{"body": "x"}\n')
    with pytest.raises(SourceFileError, match=r"c.jsonl:1: no `text`"):
        read_texts(tmp_path)


# -- pair files and the CLI ----------------------------------------------------------------------
def test_read_pairs_accepts_label_spellings_and_names_bad_lines(tmp_path):
    f = tmp_path / "pairs.jsonl"
    lines = [
        {"claim": "A.", "evidence": "B.", "label": "SUPPORTS"},
        {"claim": "A.", "evidence": ["B.", "C."], "label": "contradiction", "id": 7},
        {"claim": "A.", "evidence": "B.", "label": "NOT ENOUGH INFO"},
        {"claim": "A.", "evidence": "B."},
    ]
    f.write_text("".join(json.dumps(x) + "\n" for x in lines))
    recs = read_pairs(f)
    assert [r.label for r in recs] == ["supported", "refuted", "not_enough_info", None]
    assert recs[1].evidence == "B. C." and recs[1].extra == {"id": 7} and recs[1].line == 2
    with pytest.raises(SourceFileError, match=r"pairs.jsonl:4: no `label`"):
        read_pairs(f, require_label=True)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"claim": "A.", "evidence": 5}\n{"claim": "A.", "evidence": "B.", '
                   '"label": "maybe"}\nnot json\n')  # fmt: skip
    with pytest.raises(SourceFileError) as e:
        read_pairs(bad)
    text = str(e.value)
    assert "bad.jsonl:1: `evidence` must be a string or a list of strings" in text
    assert "bad.jsonl:2: unknown `label` 'maybe'" in text and "bad.jsonl:3: invalid JSON" in text


def test_cli_score_writes_labels_and_probabilities(tiny_checker, tmp_path):
    from grounded.cli.main import main

    _, _, folder = tiny_checker
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(
        json.dumps({"claim": "Zorvia's capital is Ostrel.", "evidence": "Ostrel is in Zorvia.",
                    "label": "SUPPORTS", "id": "a"}) + "\n"
        + json.dumps({"claim": "X.", "evidence": ["Y.", "Z."]}) + "\n"
    )  # fmt: skip
    out = tmp_path / "scored.jsonl"
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        assert (
            main(["factcheck", "score", str(folder), "--pairs", str(pairs), "--out", str(out)]) == 0
        )
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["line"] for r in rows] == [1, 2] and rows[0]["id"] == "a"
    assert rows[0]["gold"] == "supported" and "gold" not in rows[1]
    for r in rows:
        assert r["label"] in LABELS and abs(sum(r["probabilities"].values()) - 1) < 1e-5
        assert r["label"] == max(r["probabilities"], key=r["probabilities"].get)
    assert "scored 2 pair(s)" in printed.getvalue()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"claim": "X."}\n')
    with contextlib.redirect_stderr(io.StringIO()) as err:
        assert main(["factcheck", "score", str(folder), "--pairs", str(bad)]) != 0
    assert "bad.jsonl:1" in err.getvalue() and "`evidence`" in err.getvalue()


# -- calibration ---------------------------------------------------------------------------------
def test_biases_shift_probabilities_by_hand():
    p = np.array([[0.5, 0.25, 0.25]])
    np.testing.assert_allclose(apply_biases(p, [0, np.log(2), 0]), [[0.4, 0.4, 0.2]])
    np.testing.assert_allclose(apply_biases(p, [0, 0, 0]), p)


def test_fit_biases_recovers_a_never_predicted_label():
    from grounded.factcheck.training import balanced_accuracy, fit_biases

    # refuted is always second best: argmax never predicts it
    probs = np.array([[0.6, 0.3, 0.1]] * 3 + [[0.5, 0.45, 0.05]] * 3 + [[0.3, 0.1, 0.6]] * 3)
    gold = [0] * 3 + [1] * 3 + [2] * 3
    assert balanced_accuracy(gold, probs.argmax(axis=1)) == pytest.approx(2 / 3)
    biases, before, after = fit_biases(probs, gold)
    assert before == pytest.approx(2 / 3) and after == pytest.approx(1.0)
    assert set(apply_biases(probs, biases).argmax(axis=1)) == {0, 1, 2}


def test_calibration_is_saved_and_restored(tiny_checker, tmp_path):
    checker, _, _ = tiny_checker
    pairs = [("Zorvia's capital is Ostrel.", "Ostrel is the capital of Zorvia.")] * 2
    before = checker.predict(pairs).probabilities
    saved_biases = checker.biases.copy()
    try:
        checker.set_calibration([0.0, 1.5, -0.5], {"dev_pairs": 2})
        shifted = checker.predict(pairs).probabilities
        np.testing.assert_allclose(shifted, apply_biases(before, [0.0, 1.5, -0.5]))
        np.testing.assert_allclose(checker.predict(pairs, calibrated=False).probabilities, before)
        checker.save_pretrained(tmp_path / "c")
        loaded = FactChecker.from_pretrained(tmp_path / "c")
        meta = json.loads((tmp_path / "c" / "factcheck.json").read_text())
        assert meta["calibration"]["biases"] == {"supported": 0.0, "refuted": 1.5,
                                                 "not_enough_info": -0.5}  # fmt: skip
        np.testing.assert_allclose(loaded.predict(pairs).probabilities, shifted, atol=1e-6)
    finally:
        checker.biases = saved_biases
        checker.metadata.pop("calibration", None)


# -- training on free text -----------------------------------------------------------------------
NAMES = "Ada Bob Cyd Dov Eli Fay Gus Hal Ivy Jon Kai Lea Max Ned Oda Pia".split()
COLOURS = "red blue green black white pink grey brown".split()


def synthetic_pairs(n: int, seed: int) -> list[dict]:
    """A learnable task: the claim "X likes C." against evidence that says so (supported),
    says the opposite (refuted), or tells something else about X (not enough info)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        name, colour = rng.choice(NAMES), rng.choice(COLOURS)
        label = LABELS[i % 3]
        evidence = {
            "supported": f"{name} likes {colour}.",
            "refuted": f"{name} does not like {colour}.",
            "not_enough_info": f"{name} owns a {colour} bicycle.",
        }[label]
        out.append({"claim": f"{name} likes {colour}.", "evidence": evidence, "label": label})
    return out


def test_a_tiny_checker_learns_to_read_and_predicts_every_label(tiny_bert_dir, tmp_path):
    from grounded.config import update_config
    from grounded.factcheck import FactCheckerConfig
    from grounded.factcheck.data import ClaimDataConfig
    from grounded.factcheck.training import train_factchecker

    config = update_config(FactCheckerConfig(), dict(
        base_model=str(tiny_bert_dir), max_length=32, max_steps=160, learning_rate=2e-3,
        train_batch_size=32, logging_steps=10, warmup_ratio=0.0,
    ))  # fmt: skip
    fresh = FactChecker.from_base(tiny_bert_dir, max_length=32, seed=0)
    before = {k: v.clone() for k, v in fresh.model.state_dict().items()}
    checker, log, data, _ = train_factchecker(
        pairs=synthetic_pairs(600, seed=0),
        data_config=ClaimDataConfig(dev_fraction=0.15),
        checker_config=config,
        out=tmp_path / "checker",
        show_progress=False,
    )
    after = checker.model.state_dict()
    assert any(not np.allclose(before[k].numpy(), after[k].numpy()) for k in before)
    assert np.mean(log.losses[-3:]) < np.mean(log.losses[:3]) - 0.3
    assert data.stats()["train"]["labels"] == {lab: 170 for lab in LABELS}
    assert "calibration" in checker.metadata
    held_out = synthetic_pairs(150, seed=1)  # other (name, colour) draws
    loaded = FactChecker.from_pretrained(tmp_path / "checker")
    preds = loaded.predict([(p["claim"], p["evidence"]) for p in held_out])
    gold = [p["label"] for p in held_out]
    recall = {
        lab: np.mean([p == lab for p, g in zip(preds.labels, gold, strict=True) if g == lab])
        for lab in LABELS
    }
    assert min(recall.values()) >= 0.5, recall


# -- the audit: every answer gets a row, rates per answer, detection per path --------------------
def test_number_answers_get_a_claim_row_and_answers_get_a_rate(tiny_kb):
    from grounded.verify import Auditor, Document

    docs = [
        Document("2006.", "In which year was it founded?", "a"),
        Document("1,234", "How many people live there?", "b"),
        Document("---", None, "c"),
        Document("1. Fine.", None, "d"),
    ]
    report = Auditor(tiny_kb).audit(docs)
    assert [(c.text, c.document) for c in report.claims] == [
        ("2006.", 0), ("1,234", 1), ("Fine.", 3)]  # fmt: skip
    t = report.totals()
    u = t["documents_with_unsupported_claim"]
    flagged = {c.document for c, v in zip(report.claims, report.verdicts, strict=True)
               if v.label != "supported"}  # fmt: skip
    assert (u["numerator"], u["denominator"]) == (len(flagged), 4)
    assert u["rate"] == len(flagged) / 4 and u["low"] <= u["rate"] <= u["high"]
    assert t["documents_without_claims"] == 1
    assert report.to_dict()["rows"][0]["document"] == 0
    assert "Documents (answers) with an unsupported claim" in report.to_markdown()
    # the same seed gives the same interval
    assert Auditor(tiny_kb).audit(docs).totals()["documents_with_unsupported_claim"] == u


def test_detection_rates_per_path_by_hand():
    from grounded.verify.audit import detection_rates

    flagged = [True, False, True, True, False, False]
    halluc = [True, True, True, False, False, False]
    paths = ["graph", "checker", "checker", "checker", "graph", "none"]
    r = detection_rates(flagged, halluc, paths, n_boot=50)
    assert (r["detection"]["numerator"], r["detection"]["denominator"]) == (2, 3)
    assert (r["false_alarm"]["numerator"], r["false_alarm"]["denominator"]) == (1, 3)
    assert r["by_path"]["graph"]["detection"]["rate"] == 1.0
    assert r["by_path"]["checker"]["detection"]["rate"] == 0.5
    assert r["by_path"]["checker"]["false_alarm"]["rate"] == 1.0
    assert r["by_path"]["none"]["detection"]["denominator"] == 0
    with pytest.raises(ValueError, match="one entry per answer"):
        detection_rates([True], [], [])
