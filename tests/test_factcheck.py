"""grounded.factcheck: claim reading, the graph's decision, training data, the neural checker,
combined verdicts, the auditor, metrics and the CLI, on the 20-entity tiny KB."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from grounded.answers import ABSTAIN, is_abstention
from grounded.cli.main import main
from grounded.config import update_config
from grounded.factcheck import (
    CheckerOptimConfig,
    ClaimDataConfig,
    FactChecker,
    FactCheckerConfig,
    classification_report,
    confusion_matrix,
    hide_facts,
)
from grounded.factcheck.checker import alias_notes
from grounded.factcheck.data import graph_label, split_subjects
from grounded.factcheck.labels import (
    Predictions,
    canonical_label,
    label_columns,
    probabilities,
)
from grounded.factcheck.metrics import format_report, per_class
from grounded.types import LABELS, AnswerItem
from grounded.verify import AuditConfig, Auditor, Document, Verifier, VerifierConfig, decide
from grounded.verify.audit import read_documents
from kg import Passage, SourceFileError
from kg.claims import ClaimReader, compile_template
from kg.text import (
    list_items,
    split_sentences,
    strip_lead_in,
)

# -- text ----------------------------------------------------------------------------------------


def _sentences(text, **kw):
    return [text[a:b] for a, b in split_sentences(text, **kw)]


def test_split_sentences_keeps_names_and_abbreviations_whole():
    text = "Dr. Smith went to St. John's. The capital is Canberra!  Is it?\nYes it is"
    assert _sentences(text) == [
        "Dr. Smith went to St. John's.",
        "The capital is Canberra!",
        "Is it?",
        "Yes it is",
    ]
    text = "They work at Yahoo! Japan. It is big."
    assert len(_sentences(text)) == 3  # "Yahoo!" looks like a sentence end ...
    protect = [(text.index("Yahoo"), text.index(" Japan") + 6)]
    assert _sentences(text, protect=protect) == [  # ... unless the linker protects the name
        "They work at Yahoo! Japan.",
        "It is big.",
    ]


def test_split_sentences_empty_bullets_and_long_text():
    assert split_sentences("") == []
    assert split_sentences("  \n\n ") == []
    assert _sentences("1. Mongolia is in Asia.\n2. ---") == ["Mongolia is in Asia."]
    long = " ".join(["word"] * 400)  # 1999 characters, no sentence end
    chunks = _sentences(long, max_chars=500)
    assert len(chunks) == 4 and all(len(c) <= 500 for c in chunks)
    assert " ".join(chunks) == long
    with pytest.raises(ValueError, match="`max_chars` must be >= 20, got 5"):
        split_sentences("x", max_chars=5)


def test_answer_helpers():
    assert strip_lead_in("I think it is Canberra.") == "Canberra."
    assert strip_lead_in("The answer is Zulu and English") == "Zulu and English"
    assert strip_lead_in("Canberra") == "Canberra"
    assert is_abstention(ABSTAIN) and is_abstention("i don't know") and not is_abstention("No.")
    assert list_items("Pashto, Uzbek and Turkmen") == ["Pashto", "Uzbek", "Turkmen"]
    assert list_items("A, B, and C") == ["A", "B", "C"]


# -- templates and reading -----------------------------------------------------------------------


def test_compile_template_slots_and_sides():
    p = compile_template("{object} is spoken in {subject}.")
    assert dict(p.sides) == {"object": "start", "subject": "end"}
    assert p.specificity == 3
    m = p.regex.search("zulu IS SPOKEN in South Africa, mostly.")
    assert (m["object"], m["subject"]) == ("zulu", "South Africa, mostly")
    p = compile_template("{subject} is in the {object} time zone.")
    assert p.regex.search("Paris is in Europe/Paris time zone")["object"] == "Europe/Paris"
    with pytest.raises(ValueError, match="has no"):
        compile_template("No slot here.")
    with pytest.raises(ValueError, match="repeats a slot"):
        compile_template("{subject} and {subject}")


@pytest.fixture(scope="module")
def reader(tiny_kb):
    return ClaimReader(tiny_kb.graph)


@pytest.mark.parametrize(
    ("text", "relation", "subject", "objects"),
    [
        ("The capital of Mongolia is Ulaanbaatar.", "capital", "Mongolia", ("Ulaanbaatar",)),
        (
            "As far as I know, the capital of Australia is Sydney.",
            "capital",
            "Australia",
            ("Sydney",),
        ),
        (
            "The capital of Australia is Sydney, which is worth remembering.",
            "capital",
            "Australia",
            ("Sydney",),
        ),
        ("the capital of ivory coast is Yamoussoukro", "capital", "ivory coast", ("Yamoussoukro",)),
        (
            "The languages of South Africa are Zulu and English.",
            "language",
            "South Africa",
            ("Zulu", "English"),
        ),
        (
            "According to the records, Zulu is spoken in South Africa.",
            "language",
            "South Africa",
            ("Zulu",),
        ),
        ("Mongolia borders China and Russia.", "borders", "Mongolia", ("China", "Russia")),
        (
            "It is well documented that Zulu is spoken in South Africa.",
            "language",
            "South Africa",
            ("Zulu",),
        ),
    ],
)
def test_reader_reads_template_claims(reader, text, relation, subject, objects):
    r = reader.read(text)[0]
    assert (r.relation, r.subject, r.objects) == (relation, subject, objects)


def test_reader_questions_answers_and_given(reader):
    (r,) = reader.read_answer("What is the capital of Mongolia?", "I think it is Beijing.")
    assert (r.relation, r.subject, r.objects, r.via) == (
        "capital",
        "Mongolia",
        ("Beijing",),
        "question",
    )
    r = reader.read_answer("What is the capital of Mongolia?", "The capital of China is Beijing.")
    assert r[0].subject == "China"
    r = reader.read_given("South Africa", "language", "Zulu and English.")
    assert r.objects == ("Zulu", "English") and r.via == "given"
    assert reader.read("Bananas are yellow.") == []
    with pytest.raises(KeyError, match="not in the schema"):
        reader.read_given("Mongolia", "population", "3 million")


@pytest.mark.parametrize(
    ("text", "result"),
    [
        ("The capital of Mongolia is Ulan Bator.", "supported"),  # an alias
        ("The capital of Australia is Sydney.", "contradicted"),  # not an entity, functional
        ("The capital of South Africa is Cape Town.", "supported"),  # one of three
        ("Mongolia borders India.", "contradicted"),  # closed relation
        ("Mongolia borders China and Russia.", "supported"),
        ("Zulu is spoken in Mongolia.", "unknown"),  # open many-valued relation
        ("The capital of Mongolia is China.", "unknown"),  # a country is no capital: no refuting
    ],
)
def test_graph_decisions(reader, text, result):
    d = decide(reader, reader.read(text)[0])
    assert d.result == result, d.reason
    if result != "unknown" or d.facts:
        assert all(t.relation == d.relation for t in d.facts)


# -- metrics (numbers computed by hand) ----------------------------------------------------------

GOLD = [
    "supported",
    "supported",
    "refuted",
    "not_enough_info",
    "not_enough_info",
    "not_enough_info",
]
PRED = ["supported", "refuted", "refuted", "not_enough_info", "supported", "not_enough_info"]


def test_confusion_matrix_and_per_class_by_hand():
    m = confusion_matrix(GOLD, PRED)
    assert m == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    c = per_class(GOLD, PRED)
    # supported: tp 1, predicted 2, support 2 → P 1/2, R 1/2, F1 1/2
    assert c["supported"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    # refuted: tp 1, predicted 2, support 1 → P 1/2, R 1, F1 2/3
    assert c["refuted"]["f1"] == pytest.approx(2 / 3)
    # nei: tp 2, predicted 2, support 3 → P 1, R 2/3, F1 0.8
    assert c["not_enough_info"]["f1"] == pytest.approx(0.8)
    r = classification_report(GOLD, PRED)
    assert (r["n"], r["correct"]) == (6, 4)
    assert r["accuracy"] == pytest.approx(4 / 6)
    assert r["macro_f1"] == pytest.approx((0.5 + 2 / 3 + 0.8) / 3)
    md = format_report(r, "hand")
    assert "4 / 6" in md and "| not_enough_info | 1 | 0 | 2 |" in md


def test_metrics_edge_cases():
    r = classification_report([], [])
    assert r["accuracy"] == 0.0 and r["macro_f1"] == 0.0
    assert r["confusion"] == [[0] * 3] * 3 and r["per_class"]["refuted"]["support"] == 0
    # A label never gold nor predicted scores 0 and still counts in the macro mean: 1/3, not 1.
    r = classification_report(["supported"], ["supported"])
    assert r["per_class"]["supported"]["f1"] == 1.0
    assert r["macro_f1"] == pytest.approx(1 / 3)
    assert isinstance(r["confusion"][0][0], int) and isinstance(r["accuracy"], float)
    with pytest.raises(ValueError, match="differ in length"):
        confusion_matrix(["supported"], [])
    with pytest.raises(ValueError, match="'maybe'"):
        confusion_matrix(["supported"], ["maybe"])


# -- checker maths and label maps ----------------------------------------------------------------


def test_probabilities_by_hand():
    logits = np.array([[math.log(3), 0.0, math.log(2)]])
    # columns reorder to LABELS: [col 1, col 2, col 0] = exp [1, 2, 3] / 6
    assert probabilities(logits, [1, 2, 0])[0].tolist() == pytest.approx([1 / 6, 2 / 6, 3 / 6])


def test_label_maps():
    assert label_columns({0: "supported", 1: "refuted", 2: "not_enough_info"}) == [0, 1, 2]
    assert label_columns({0: "REFUTES", 1: "NOT ENOUGH INFO", 2: "SUPPORTS"}) == [2, 0, 1]
    assert canonical_label("Entailment") == "supported"
    with pytest.raises(ValueError, match=r"do not name \['not_enough_info'\]"):
        label_columns({0: "supported", 1: "refuted"})
    with pytest.raises(ValueError, match="twice"):
        label_columns({0: "supported", 1: "supports", 2: "refuted"})


def test_configs_validate():
    with pytest.raises(ValueError, match="`max_length` must be <= 512"):
        FactCheckerConfig(max_length=1024)
    with pytest.raises(ValueError, match="`test_fraction` must be in"):
        ClaimDataConfig(test_fraction=1.5)
    with pytest.raises(ValueError, match="`forms` must name registered forms"):
        ClaimDataConfig(forms=["haiku"])
    with pytest.raises(ValueError, match="`min_relation_prob`"):
        VerifierConfig(min_relation_prob=2)
    with pytest.raises(ValueError, match="`min_confidence` must be in"):
        VerifierConfig(min_confidence=1.5)
    with pytest.raises(ValueError, match="`max_claim_chars`"):
        AuditConfig(max_claim_chars=1)


# -- training data -------------------------------------------------------------------------------


def test_split_subjects_reproducible_and_disjoint():
    subjects = [f"s{i}" for i in range(50)]
    train, test = split_subjects(subjects, 0.2, seed=3)
    assert (len(train), len(test)) == (40, 10) and not train & test
    assert split_subjects(list(reversed(subjects)), 0.2, seed=3) == (train, test)
    assert split_subjects(subjects, 0.2, seed=4) != (train, test)


def test_claim_data_splits_labels_and_evidence(tiny_claims, tiny_kb):
    ds = tiny_claims.dataset
    assert set(ds) == {"train", "test"}
    train_subjects, test_subjects = set(ds["train"]["subject"]), set(ds["test"]["subject"])
    assert train_subjects and test_subjects and not train_subjects & test_subjects
    assert ds["train"].features["label"].names == list(LABELS)
    view = tiny_claims.view
    for split in ds.values():
        for row in split:
            if row["kind"] == "counterfactual":
                continue  # see test_counterfactual_twins
            # labels are the held-out graph's judgement of the claim
            assert LABELS[row["label"]] == graph_label(
                view.graph, row["subject"], row["relation"], row["objects"]
            )
            assert row["claim"].endswith(row["text"]) and row["evidence"]
            if (row["subject"], row["relation"]) in tiny_claims.hidden:
                assert row["label"] == LABELS.index("not_enough_info")
                assert not any(
                    k.startswith(f"{row['subject']}\t{row['relation']}\t")
                    for k in row["evidence_keys"]
                )
    labels = {LABELS[i] for i in ds["train"]["label"]}
    assert labels == set(LABELS)


def test_counterfactual_twins(tiny_claims):
    train, test = tiny_claims.dataset["train"], tiny_claims.dataset["test"]
    assert "counterfactual" not in test["kind"]
    twins = [r for r in train if r["kind"] == "counterfactual"]
    originals = {r["claim"]: r for r in train if r["kind"] != "counterfactual"}
    decided = sum(LABELS[r["label"]] != "not_enough_info" for r in originals.values())
    assert 0 < len(twins) < decided  # about half of the supported and refuted claims
    for twin in twins:
        original = originals[twin["claim"]]
        assert LABELS[original["label"]] != "not_enough_info"
        assert LABELS[twin["label"]] == "not_enough_info"
        assert (twin["subject"], twin["relation"]) == (original["subject"], original["relation"])
        # the evidence lacks every fact of the pair, as if the KB never had it
        pair = f"{twin['subject']}\t{twin['relation']}\t"
        assert not any(k.startswith(pair) for k in twin["evidence_keys"])
        assert 0 < len(twin["evidence_keys"]) <= 5
    stats = tiny_claims.stats()
    assert stats["train"]["kinds"]["counterfactual"] == len(twins)
    with pytest.raises(ValueError, match="`counterfactual_rate` must be in"):
        ClaimDataConfig(counterfactual_rate=2)


def test_claim_data_is_deterministic(tiny_kb, tiny_claims):
    from grounded.factcheck import build_claim_data

    config = ClaimDataConfig(max_train_claims=60, max_test_claims=30, test_fraction=0.3)
    again = build_claim_data(tiny_kb, config, splits=("test",), show_progress=False)
    assert again.hidden == tiny_claims.hidden
    assert again.dataset["test"]["claim"] == tiny_claims.dataset["test"]["claim"]
    assert again.dataset["test"]["evidence"] == tiny_claims.dataset["test"]["evidence"]
    assert "train" not in again.dataset


def test_hide_facts_removes_facts_index_records_and_passage_sentences(tiny_kb):
    view = hide_facts(tiny_kb, [("Mongolia", "borders"), ("China", "capital")])
    assert view.graph.objects("Mongolia", "borders") == []
    assert view.graph.objects("Mongolia", "capital") == ["Ulaanbaatar"]
    keys = {view.index.get(i)["key"] for i in view.index.ids}
    assert "Mongolia\tborders\tChina" not in keys and "China\tcapital\tBeijing" not in keys
    assert "Mongolia\tcapital\tUlaanbaatar" in keys
    # The Mongolia passage names China and Russia (its borders): that sentence goes.
    passage = (
        next(p for p in view.passages if p.id == "mongolia-1")
        if any(p.id == "mongolia-1" for p in view.passages)
        else None
    )
    assert passage is None or "China" not in passage.text
    assert tiny_kb.graph.objects("Mongolia", "borders") == ["China", "Russia"]  # untouched
    hits = view.retriever.retrieve("Which countries border Mongolia?", k=10)
    assert not any(
        h.triple and h.triple.relation == "borders" and h.triple.subject == "Mongolia" for h in hits
    )


def test_scrub_passage():
    from grounded.factcheck.heldout import scrub_passage

    p = Passage("x", "Chad is in Africa. Its capital is N'Djamena. It is big.", ("Chad",))
    assert scrub_passage(p, ["N'Djamena"]).text == "Chad is in Africa. It is big."
    assert scrub_passage(p, ["Lyon"]) is p
    assert scrub_passage(Passage("y", "Its capital is Lyon.", ()), ["Lyon"]) is None


# -- the neural checker --------------------------------------------------------------------------


def test_training_changes_parameters_and_lowers_loss(tiny_checker, tiny_bert_dir):
    checker, log, _ = tiny_checker
    fresh = FactChecker.from_base(tiny_bert_dir, max_length=64, seed=0)
    before = dict(fresh.model.named_parameters())
    changed = [
        n
        for n, p in checker.model.named_parameters()
        if not np.allclose(p.detach().numpy(), before[n].detach().numpy())
    ]
    assert "classifier.weight" in changed and any(n.startswith("bert.encoder") for n in changed)
    assert log.steps == 30 and len(log.losses) == 30
    assert np.mean(log.losses[-5:]) < np.mean(log.losses[:5])
    assert checker.metadata["train"]["optim"]["max_steps"] == 30


def test_training_keeps_the_best_epoch_on_dev(tiny_bert_dir, tiny_claims):
    """Three epochs, the dev split scored after each: the checker returned is the epoch with
    the best dev balanced accuracy (recomputed here from its own predictions)."""
    from grounded.factcheck import train_checker
    from grounded.factcheck.training import balanced_accuracy

    rows = tiny_claims.dataset["train"]
    train, dev = rows.select(range(16)), rows.select(range(16, len(rows)))
    optim = CheckerOptimConfig(
        num_train_epochs=3, learning_rate=1e-3, per_device_train_batch_size=8, warmup_steps=0.0
    )
    config = FactCheckerConfig(base_model=str(tiny_bert_dir), max_length=64, optim=optim)
    checker, log = train_checker(train, config, dev=dev, show_progress=False)
    record = checker.metadata["train_log"]
    scores = [d["balanced_accuracy"] for d in record["dev_by_epoch"]]
    assert [d["epoch"] for d in record["dev_by_epoch"]] == [1.0, 2.0, 3.0] and log.steps == 6
    best = record["dev_by_epoch"][scores.index(max(scores))]
    assert record["kept_epoch"] == best["epoch"]
    probs = checker.predict(list(zip(dev["claim"], dev["evidence"], strict=True))).probabilities
    assert balanced_accuracy(dev["label"], probs.argmax(1)) == pytest.approx(max(scores), abs=1e-4)
    # without a dev split (or with best_epoch off) the last epoch is kept and nothing is scored
    last, _ = train_checker(train, config, show_progress=False)
    assert "dev_by_epoch" not in last.metadata["train_log"]


def test_training_is_deterministic(tiny_checker, tiny_claims):
    from grounded.factcheck import train_checker

    config = update_config(
        FactCheckerConfig.from_dict(tiny_checker[0].metadata["train"]), {"max_steps": 4}
    )
    train = tiny_claims.dataset["train"]
    a, log_a = train_checker(train, config, show_progress=False)
    b, log_b = train_checker(train, config, show_progress=False)
    assert log_a.losses == pytest.approx(log_b.losses, rel=1e-6)
    pa, pb = dict(a.model.named_parameters()), dict(b.model.named_parameters())
    assert all(np.array_equal(pa[n].detach().numpy(), pb[n].detach().numpy()) for n in pa)


def test_save_load_round_trip_identical_predictions(tiny_checker, tiny_claims):
    checker, _, folder = tiny_checker
    assert {p.name for p in folder.iterdir()} >= {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "factcheck.json",
    }
    meta = json.loads((folder / "factcheck.json").read_text())
    assert meta["labels"] == list(LABELS) and meta["max_length"] == 64
    loaded = FactChecker.from_pretrained(folder)
    test = tiny_claims.dataset["test"]
    a = checker.predict_proba(test["claim"], test["evidence"], batch_size=4)
    b = loaded.predict_proba(test["claim"], test["evidence"], batch_size=7)
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert a.shape == (len(test), 3) and np.allclose(a.sum(axis=1), 1.0)
    preds = loaded.predict(test["claim"][:2], test["evidence"][:2])
    assert preds[0].label in LABELS and preds[0].confidence == max(preds[0].probabilities.values())
    assert loaded.predict_proba([], []).shape == (0, 3)
    with pytest.raises(ValueError, match="one entry per pair"):
        loaded.predict(["a"], [])


def test_quantized_checker_predicts_close_to_the_original(tiny_checker, tiny_claims):
    checker = tiny_checker[0]
    fast = checker.quantized()
    test = tiny_claims.dataset["test"]
    a = checker.predict_proba(test["claim"], test["evidence"])
    b = fast.predict_proba(test["claim"], test["evidence"])
    assert np.abs(a - b).max() < 0.05
    assert fast.path == checker.path and fast.columns == checker.columns


def test_load_errors_and_foreign_label_names(tmp_path, tiny_bert_dir):
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    with pytest.raises(FileNotFoundError, match="not a fact-checker folder"):
        FactChecker.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="not a sequence classifier"):
        FactChecker.from_pretrained(tiny_bert_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    base = BertConfig.from_pretrained(tiny_bert_dir)

    def save(id2label, name):
        config = BertConfig(
            **{
                **base.to_dict(),
                "id2label": id2label,
                "label2id": {v: k for k, v in id2label.items()},
            }
        )
        BertForSequenceClassification(config).save_pretrained(tmp_path / name)
        tokenizer.save_pretrained(tmp_path / name)
        return tmp_path / name

    fever = FactChecker.from_pretrained(
        save({0: "REFUTES", 1: "NOT ENOUGH INFO", 2: "SUPPORTS"}, "fever")
    )
    assert fever.columns == [2, 0, 1]
    with pytest.raises(ValueError, match="do not name"):
        FactChecker.from_pretrained(save({0: "positive", 1: "negative", 2: "neutral"}, "sst"))


def test_new_checker_from_the_packaged_minilm():
    checker = FactChecker.from_base(None, max_length=32)
    assert checker.model.config.id2label == dict(enumerate(LABELS))
    assert checker.model.config.num_hidden_layers == 6
    p = checker.predict_proba(
        ["The capital of Chad is Paris."], ["The capital of Chad is N'Djamena."]
    )
    assert p.shape == (1, 3) and p.sum() == pytest.approx(1.0)


# -- combined verdicts ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def verifier(tiny_kb):
    return Verifier(tiny_kb)


@pytest.mark.parametrize(
    ("claim", "label", "decided_by"),
    [
        ("The capital of Australia is Sydney.", "refuted", "graph"),
        ("The capital of Mongolia is Ulan Bator.", "supported", "graph"),
        ("The capital of Australia is not Sydney.", "supported", "graph"),
        ("The capital of Australia is not Canberra.", "refuted", "graph"),
        ("Mongolia borders India.", "refuted", "graph"),
        ("Ulaanbaatar is Mongolia's capital city.", "supported", "graph"),  # linked fallback
        ("Zulu is spoken in Mongolia.", "not_enough_info", "none"),  # open relation, no checker
        ("Bananas are yellow.", "not_enough_info", "none"),  # no known entity
        ("", "not_enough_info", "none"),
    ],
)
def test_graph_only_verdicts(verifier, claim, label, decided_by):
    (v,) = verifier.verify([claim])
    assert (v.label, v.decided_by) == (label, decided_by), v.reason
    if decided_by == "graph":
        assert v.evidence and all(e.source == "graph" for e in v.evidence)
        assert 0 < v.confidence <= 1


def test_graph_verdict_records_reading_and_evidence(verifier):
    (v,) = verifier.verify(["The capital of Australia is Sydney."])
    assert (v.subject, v.relation, v.objects, v.confidence) == (
        "Australia",
        "capital",
        ("Sydney",),
        1.0,
    )
    assert [e.text for e in v.evidence] == ["The capital of Australia is Canberra."]
    d = v.to_dict()
    assert d["evidence"][0]["triple"] == ["Australia", "capital", "Canberra"]
    (v,) = verifier.verify(["Ulaanbaatar is Mongolia's capital city."])
    assert v.confidence < 1.0  # the relation was detected, not read from a template


def test_answers_in_context_and_judge_answers(verifier):
    q = "What is the capital of Mongolia?"
    labels = [
        v.label for v in verifier.verify(["Ulaanbaatar.", "It is Beijing.", ABSTAIN], [q, q, q])
    ]
    assert labels == ["supported", "refuted", "not_enough_info"]
    items = [
        AnswerItem(q, "Beijing", "Mongolia", "capital"),
        AnswerItem(q, "I think it's Ulan Bator.", "Mongolia", "capital"),
        AnswerItem(q, ABSTAIN, "Mongolia", "capital"),
        AnswerItem(
            "Which languages are spoken in South Africa?",
            "Zulu and English.",
            "South Africa",
            "language",
        ),
        AnswerItem(q, "Beijing"),  # no (subject, relation): read from the question
        AnswerItem(q, "Beijing", "Mongolia", "population"),  # unknown relation: same
    ]
    assert verifier.judge_answers(items) == [
        "refuted",
        "supported",
        "not_enough_info",
        "supported",
        "refuted",
        "refuted",
    ]
    with pytest.raises(ValueError, match="one entry per claim"):
        verifier.verify(["a", "b"], ["q"])


def test_an_answer_the_evaluator_scores_correct_is_no_false_alarm(verifier, tiny_kb):
    # The evaluator's checker audit judges answers from their question alone: the question
    # is read to its pair, and the answer as the evaluator reads it ("Y1, part of Y2" at the
    # level the KB holds), so a correct answer is never flagged (before: refuted, as
    # "Eastern Europe, part of Europe" is not Russia's region).
    from grounded.answers import score_answer

    q, a = "Where is Russia?", "Russia is in Eastern Europe, part of Europe."
    assert score_answer(tiny_kb.graph, "Russia", "region", a).outcome == "correct"
    assert verifier.asked_pair(q) == ("Russia", "region")
    alone, given = verifier.judge([AnswerItem(q, a), AnswerItem(q, a, "Russia", "region")])
    assert (alone.label, given.label) == ("supported", "supported")
    assert alone.claim == given.claim == "Europe."
    assert verifier.asked_pair("Bananas are yellow?") is None


def test_checker_judges_what_the_graph_cannot(tiny_kb, tiny_checker):
    checker, _, _ = tiny_checker
    v = Verifier(tiny_kb, checker)
    assert v.evidence_k == 5
    a, b, c = v.verify(
        [
            "Zulu is spoken in Switzerland.",
            "The capital of Australia is Sydney.",
            "Bananas are yellow.",
        ]
    )
    assert a.decided_by == "checker" and len(a.evidence) == 5 and a.probabilities
    assert a.confidence == a.probabilities[a.label]
    assert (b.decided_by, c.decided_by) == ("graph", "none")
    assert v.timings["retrieval"] > 0 and v.timings["checker"] > 0
    checker_only = Verifier(tiny_kb, checker, VerifierConfig(use_graph=False))
    assert checker_only.verify(["The capital of Australia is Sydney."])[0].decided_by == "checker"


class FixedChecker:
    """A stand-in checker giving every (claim, evidence) pair the same probabilities."""

    def __init__(self, probs: dict[str, float], metadata: dict | None = None) -> None:
        self.probs = probs
        self.metadata: dict = metadata or {}
        self.calls: list[list[str]] = []
        self.evidence: list[str] = []

    def predict(self, claims, evidence, *, batch_size=64, rule=None):
        self.calls.append(list(claims))
        self.evidence += list(evidence)
        row = [self.probs[lab] for lab in LABELS]
        return Predictions(np.array([row] * len(claims)), rule=rule)


def test_silent_graph_and_fact_only_evidence_is_not_enough_info(tiny_kb):
    # The graph reads the claim fully and holds no fact that decides it; the evidence has no
    # passage: the checker could learn nothing the graph has not checked.
    sure = FixedChecker({"supported": 0.9, "refuted": 0.05, "not_enough_info": 0.05})
    view = hide_facts(tiny_kb, [("China", "capital")])
    v = Verifier(view, sure, VerifierConfig(evidence_k=5))
    no_fact, open_unlisted, with_passage, misread = v.verify(
        [
            "The capital of China is Shanghai.",  # the view has no capital of China
            "Zulu is spoken in Mongolia.",  # open relation that does not list Zulu
            "Zulu is spoken in Switzerland.",  # the same, but a passage is retrieved
            "Mongolia is in China.",  # a country cannot be a region: misread, not silence
        ]
    )
    for x in (no_fact, open_unlisted):
        assert (x.label, x.decided_by, x.probabilities) == ("not_enough_info", "graph", None)
        assert x.confidence == 1.0 and "no passage" in x.reason
        assert x.evidence and all(e.kind == "fact" for e in x.evidence)
    assert no_fact.reason.startswith("the graph has no 'capital' for 'China'")
    # no passage is about China: its other facts are the evidence, and nothing is retrieved
    assert "no passage of the knowledge base is about 'China'" in no_fact.reason
    assert {e.triple.subject for e in no_fact.evidence} == {"China"}
    alone = Verifier(view, sure, VerifierConfig(evidence_k=5))
    assert alone.verify(["The capital of China is Shanghai."])[0].label == "not_enough_info"
    assert alone.timings["retrieval"] == 0.0
    assert (no_fact.subject, no_fact.relation) == ("China", "capital")
    assert "many-valued and open" in open_unlisted.reason
    assert "The capital of China is Beijing." not in [e.text for e in no_fact.evidence]
    assert any(e.kind == "passage" for e in with_passage.evidence)
    assert (with_passage.label, with_passage.decided_by) == ("supported", "checker")
    assert (misread.label, misread.decided_by) == ("supported", "checker")
    assert sure.calls == [["Zulu is spoken in Switzerland.", "Mongolia is in China."]]
    off = Verifier(view, sure, VerifierConfig(silence_is_nei=False))
    assert off.verify(["The capital of China is Shanghai."])[0].decided_by == "checker"


@pytest.mark.parametrize(
    ("probs", "min_confidence", "label", "confidence"),
    [
        ({"supported": 0.5, "refuted": 0.3, "not_enough_info": 0.2}, 0.6, "not_enough_info", 0.2),
        ({"supported": 0.5, "refuted": 0.3, "not_enough_info": 0.2}, 0.5, "supported", 0.5),
        ({"supported": 0.5, "refuted": 0.3, "not_enough_info": 0.2}, 0.0, "supported", 0.5),
        ({"supported": 0.1, "refuted": 0.4, "not_enough_info": 0.5}, 0.9, "not_enough_info", 0.5),
    ],
)
def test_min_confidence_turns_unsure_checker_verdicts_into_not_enough_info(
    tiny_kb, probs, min_confidence, label, confidence
):
    config = VerifierConfig(evidence_k=5, min_confidence=min_confidence)
    (v,) = Verifier(tiny_kb, FixedChecker(probs), config).verify(["Zulu is spoken in Switzerland."])
    assert (v.label, v.decided_by, v.confidence) == (label, "checker", confidence)
    assert v.probabilities == probs
    assert ("below min_confidence" in v.reason) == (label != max(probs, key=probs.get))


def test_alias_notes_in_the_checker_evidence(tiny_kb, tiny_claims):
    claim = "Zulu is spoken in Swiss Confederation."
    note = "Swiss Confederation is another name for Switzerland."
    assert alias_notes(tiny_kb.graph.linker, claim) == [note]
    assert alias_notes(tiny_kb.graph.linker, "Zulu is spoken in Switzerland.") == []
    probs = {"supported": 0.2, "refuted": 0.2, "not_enough_info": 0.6}
    for meta, expected in (({"data": {"alias_notes": True}}, True), ({}, False)):
        checker = FixedChecker(probs, meta)
        v = Verifier(tiny_kb, checker, VerifierConfig(silence_is_nei=False))
        assert v.alias_notes is expected
        v.verify([claim])
        assert checker.evidence[0].startswith(note) is expected
    # the training data reads evidence the same way
    for row in tiny_claims.dataset["train"]:
        notes = alias_notes(tiny_claims.view.graph.linker, row["claim"])
        assert row["evidence"].startswith(" ".join(notes))


def test_abstention_is_never_refuted_even_by_the_checker(tiny_kb, tiny_checker):
    v = Verifier(tiny_kb, tiny_checker[0])
    item = AnswerItem("What is the capital of Mongolia?", ABSTAIN)
    assert v.judge_answers([item]) == ["not_enough_info"]


# -- the auditor ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def auditor(tiny_kb):
    return Auditor(tiny_kb)


def test_audit_text_totals_with_denominators(auditor, tmp_path):
    report = auditor.audit_text(
        "The capital of Australia is Sydney. The capital of Mongolia is Ulaanbaatar. "
        "Zulu is spoken in Mongolia."
    )
    assert [v.label for v in report.verdicts] == ["refuted", "supported", "not_enough_info"]
    t = report.totals()
    assert t["refuted"] == {"numerator": 1, "denominator": 3, "rate": 1 / 3}
    assert t["refuted_or_not_enough_info"] == {"numerator": 2, "denominator": 3, "rate": 2 / 3}
    assert t["decided_by"] == {"graph": 2, "checker": 0, "none": 1}
    j, m = report.save(tmp_path / "report")
    data = json.loads(j.read_text())
    assert data["totals"]["refuted"]["denominator"] == 3 and len(data["rows"]) == 3
    row = data["rows"][0]
    assert {"claim", "label", "confidence", "evidence", "decided_by"} <= set(row)
    md = m.read_text()
    assert "| refuted | 1 / 3 | 33.3% |" in md and "| refuted or not enough info | 2 / 3 |" in md
    assert set(report.timings) >= {"splitting", "linking", "retrieval", "checker", "total"}


def test_audit_empty_text(auditor):
    report = auditor.audit_text("")
    assert report.claims == [] and report.totals()["refuted"]["rate"] is None
    assert "0 / 0" in report.to_markdown()


def test_audit_very_long_text_in_chunks(tiny_kb):
    auditor = Auditor(tiny_kb, config=AuditConfig(max_claim_chars=200, claims_per_batch=50))
    text = ("The capital of Australia is Sydney. " * 120) + "Blah" + " blah" * 299
    report = auditor.audit_text(text)
    assert len(report.claims) == 120 + 8  # 1,499 characters of "blah" in chunks of <= 200
    assert all(len(c.text) <= 200 for c in report.claims)
    assert report.totals()["refuted"]["numerator"] == 120


def test_audit_claims_without_known_entities(auditor):
    report = auditor.audit_text("Purple elephants dance on Tuesdays. Water is wet.")
    assert [v.label for v in report.verdicts] == ["not_enough_info"] * 2
    assert {v.decided_by for v in report.verdicts} == {"none"}


def test_audit_pairs_and_jsonl(auditor, tmp_path):
    report = auditor.audit_pairs([("What is the capital of Mongolia?", "Beijing. It is big.")])
    assert [c.question for c in report.claims] == ["What is the capital of Mongolia?"] * 2
    assert report.verdicts[0].label == "refuted"
    f = tmp_path / "out.jsonl"
    f.write_text(
        json.dumps({"id": "a", "text": "The capital of Australia is Sydney."})
        + "\n\n"
        + json.dumps({"question": "Where is Mongolia?", "answer": "Asia."})
        + "\n",
        encoding="utf-8",
    )
    report = auditor.audit_file(f)
    assert [v.label for v in report.verdicts] == ["refuted", "supported"]
    assert report.claims[0].source == "out.jsonl:1 (a)"


def test_jsonl_errors_name_file_and_line(tmp_path):
    f = tmp_path / "bad.jsonl"
    f.write_text('{"text": "ok"}\n{"prompt": "x"}\nnot json\n[1]\n', encoding="utf-8")
    with pytest.raises(SourceFileError) as info:
        read_documents(f)
    msg = str(info.value)
    assert f"{f}:2: missing field `text` (or `question` and `answer`)" in msg
    assert f"{f}:3: invalid JSON" in msg and f"{f}:4: expected a JSON object" in msg
    cfg = AuditConfig(text_field="prompt")
    f.write_text('{"prompt": "x"}\n', encoding="utf-8")
    assert read_documents(f, cfg)[0].text == "x"


def test_non_utf8_file_error_names_the_file(tmp_path):
    for name in ("latin1.txt", "latin1.jsonl"):
        f = tmp_path / name
        f.write_bytes('{"text": "São Tomé"}\n'.encode("latin-1"))
        with pytest.raises(ValueError, match=rf"{name}:1: not valid UTF-8 \(byte 0xe3"):
            read_documents(f)
    with pytest.raises(ValueError, match=r"unknown input type '\.pdf'"):
        (tmp_path / "x.pdf").write_text("x")
        read_documents(tmp_path / "x.pdf")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_documents(tmp_path / "missing.jsonl")


def test_audit_with_checker_records_checker(tiny_kb, tiny_checker):
    folder = tiny_checker[2]
    loaded = FactChecker.from_pretrained(folder)
    report = Auditor(tiny_kb, loaded).audit([Document("Zulu is spoken in Switzerland.")])
    assert report.verdicts[0].decided_by == "checker"
    assert report.to_dict()["checker"]["path"] == str(folder)


# -- command line --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", [["factcheck"], ["factcheck", "train"], ["factcheck", "eval"], ["audit"]]
)
def test_help(path, capsys):
    with pytest.raises(SystemExit) as info:
        main([*path, "--help"])
    assert info.value.code == 0
    assert "usage: grounded" in capsys.readouterr().out


def test_cli_audit_quick_look(tiny_kb, capsys):
    assert main(["audit", str(tiny_kb.path), "--text", "The capital of Australia is Sydney."]) == 0
    out = capsys.readouterr().out
    assert "refuted (1.00, decided by graph)" in out and "refuted: 1 / 1 claims" in out
    assert main(["audit", str(tiny_kb.path)]) == 2
    assert "nothing to audit" in capsys.readouterr().err


def test_cli_audit_file_with_checker_writes_report(tiny_kb, tiny_checker, tmp_path, capsys):
    f = tmp_path / "outputs.jsonl"
    f.write_text(
        json.dumps({"question": "What is the capital of Australia?", "answer": "Sydney"})
        + "\n"
        + json.dumps({"text": "Zulu is spoken in Switzerland."})
        + "\n"
    )
    out = tmp_path / "report"
    code = main(
        [
            "audit",
            str(tiny_kb.path),
            str(f),
            "--checker",
            str(tiny_checker[2]),
            "--out",
            str(out),
            "--quiet",
            "--quantize",
        ]
    )
    assert code == 0
    data = json.loads((out / "report.json").read_text())
    assert data["totals"]["claims"] == 2 and data["totals"]["decided_by"]["checker"] == 1
    assert (out / "report.md").read_text().startswith("# Audit report")
    # an earlier report is never replaced silently; the refusal comes before any work
    before = (out / "report.json").read_text()
    assert main(["audit", str(tiny_kb.path), str(f), "--out", str(out), "--quiet"]) == 2
    assert "already holds a report; pass `--overwrite`" in capsys.readouterr().err
    assert (out / "report.json").read_text() == before
    f.write_text('{"answer": "Sydney"}\n')
    assert main(["audit", str(tiny_kb.path), str(f)]) == 2
    assert f"{f}:1: missing field" in capsys.readouterr().err
    f.write_bytes(b"\xff\xfe bad\n")
    assert main(["audit", str(tiny_kb.path), str(f)]) == 2
    assert "not valid UTF-8" in capsys.readouterr().err


def test_cli_factcheck_train_and_eval(tiny_kb, tiny_bert_dir, tmp_path, capsys):
    out = tmp_path / "checker"
    args = [
        "factcheck",
        "train",
        str(tiny_kb.path),
        "--out",
        str(out),
        "--quiet",
        "--base-model",
        str(tiny_bert_dir),
        "--max-steps",
        "2",
        "--max-length",
        "64",
        "--max-train-claims",
        "40",
        "--max-test-claims",
        "20",
        "--test-fraction",
        "0.3",
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "neural checker alone" in printed and "combined (graph first" in printed
    meta = json.loads((out / "factcheck.json").read_text())
    assert meta["kb"]["checksum"] == tiny_kb.checksum and meta["data"]["max_train_claims"] == 40
    assert set(meta["metrics"]) == {"neural", "combined", "graph"}
    assert main(args) == 2  # --out exists
    assert "--overwrite" in capsys.readouterr().err
    assert (
        main(
            [
                "factcheck",
                "eval",
                str(tiny_kb.path),
                str(out),
                "--quiet",
                "--out",
                str(tmp_path / "eval"),
            ]
        )
        == 0
    )
    scores = json.loads((tmp_path / "eval" / "eval.json").read_text())["scores"]
    # eval rebuilds the same test claims from the stored settings
    assert scores["neural"]["n"] == meta["metrics"]["neural"]["n"]
    assert scores["combined"]["accuracy"] == meta["metrics"]["combined"]["accuracy"]


def test_a_name_the_graph_holds_no_fact_about_can_still_contradict(tiny_kb):
    view = hide_facts(tiny_kb, [("Mongolia", "capital")])  # Ulaanbaatar keeps only its alias
    (v,) = Verifier(view).verify(["The capital of China is Ulan Bator."])
    assert (v.label, v.decided_by) == ("refuted", "graph")


def test_a_checker_trained_through_the_api_is_read_as_trained(tiny_kb, tiny_checker):
    # regression: the verifier read `evidence_k`/`alias_notes` from metadata only the CLI
    # wrote, so a checker trained through the Python API was read with other settings
    _, _, folder = tiny_checker
    loaded = FactChecker.from_pretrained(folder)
    assert loaded.metadata["data"]["evidence_k"] == 5
    assert loaded.metadata["kb"]["checksum"] == tiny_kb.checksum
    v = Verifier(tiny_kb, loaded)
    assert (v.evidence_k, v.alias_notes) == (5, False)


def test_relation_detection_uses_the_objects_type(tmp_path, encoder):
    # issue 11: detection on the masked sentence ("[MASK] is a [MASK].") read "Niobium is a
    # transition metal." as the `symbol` relation; the object's vocabulary tells them apart
    from grounded.kb import KnowledgeBase
    from kg import KnowledgeSource, Relation, Schema, Triple

    schema = Schema(
        [
            Relation("symbol", "The chemical symbol of {subject} is {object}.", ["x {subject}?"]),
            Relation("category", "{subject} belongs to the {object} category.", ["y {subject}?"]),
        ]
    )
    facts = [
        ("Niobium", "symbol", "Nb"), ("Niobium", "category", "transition metal"),
        ("Sodium", "symbol", "Na"), ("Sodium", "category", "alkali metal"),
        ("Neon", "symbol", "Ne"), ("Neon", "category", "noble gas"),
    ]  # fmt: skip
    source = KnowledgeSource([Triple(*f) for f in facts], schema, {}, [], name="elements")
    kb = KnowledgeBase.build(source, tmp_path / "kb", encoder=encoder, show_progress=False)
    v = Verifier(kb, None, VerifierConfig(min_relation_prob=0.5))
    right, wrong = v.verify(["Niobium is a transition metal.", "Sodium is a noble gas."])
    assert (right.label, right.relation) == ("supported", "category"), right
    assert (wrong.label, wrong.relation) == ("refuted", "category"), wrong


def test_possessive_claims_are_read_with_the_relations_own_templates():
    # issue 11: "Manganese's atomic number is 10." escaped the graph: the relation file says
    # "The atomic number of {subject} is {object}." and nobody lists the possessive
    from kg import KnowledgeGraph, Relation, Schema, Triple
    from kg.check import judge_objects

    schema = Schema(
        [
            Relation(
                "atomic_number",
                "The atomic number of {subject} is {object}.",
                ["What is the atomic number of {subject}?"],
            )
        ]
    )
    graph = KnowledgeGraph([Triple("Manganese", "atomic_number", "25")], schema)
    reader = ClaimReader(graph)
    (r,) = reader.read("Manganese's atomic number is 10.")
    assert (r.relation, r.subjects, r.objects) == ("atomic_number", ("Manganese",), ("10",))
    assert judge_objects(graph, r.subject, r.relation, r.objects).result == "contradicted"
    (q,) = reader.read_question("What is Manganese's atomic number?")
    assert (q.relation, q.subjects) == ("atomic_number", ("Manganese",))
    # the template's own wording still reads
    assert reader.read("The atomic number of Manganese is 25.")[0].objects == ("25",)


def test_a_claim_listing_hundreds_of_names_is_judged_item_by_item(tiny_kb):
    # issue 13: a 6,000-character listing was cut at 500 characters and only the first piece
    # had its subject; every later item was "not enough info"
    from kg.text import list_pieces

    names = ["China", "Russia", *(f"Invented{i}" for i in range(498)), "Atlantis"]
    text = "Mongolia borders " + ", ".join(names[:-1]) + " and Atlantis."
    auditor = Auditor(tiny_kb, config=AuditConfig(max_claim_chars=300))
    claims = auditor.claims([Document(text)])
    assert len(claims) > 10
    assert all(c.text.startswith("Mongolia borders ") for c in claims)
    listed = [i for c in claims for i in c.text[len("Mongolia borders ") :].rstrip(".").split(", ")]
    assert "Atlantis" in claims[-1].text and len(" ".join(listed)) >= len(" ".join(names[:-1]))
    report = auditor.audit([Document(text)])
    # borders is closed: every piece names a country the KB does not list for Mongolia
    assert all(v.label == "refuted" for v in report.verdicts), {v.label for v in report.verdicts}
    # a name of several words stays one item (the linker's mention)
    assert list_pieces("Mongolia borders South Africa, China and Russia.", 35, [(17, 29)]) == [
        "Mongolia borders South Africa.",
        "Mongolia borders China and Russia.",
    ]
