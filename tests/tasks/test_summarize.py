"""The summarisation task (nmt/tasks/summarize.py): examples with copyable OOVs, batches, the loss, the Summarizer
on a random and on an overfitted model, corpora and their fields, evaluation rows, the lead baseline."""

import pytest
import torch

from nmt.config import SummaryDataConfig, SummaryDecodeConfig
from nmt.data import DataError
from nmt.models.pointer import PointerGenerator
from nmt.tasks import make_setup
from nmt.tasks.summarize import (
    Summarizer,
    SummaryTask,
    evaluate,
    evaluation_pairs,
    lead_baseline,
    make_batch,
    make_example,
    read_pairs,
)
from nmt.tokenizers import BOS, EOS, PAD, UNK, VocabTokenizer
from tests.models.test_pointer import tiny_model
from tests.toydata import EMAILS, jsonl_records

# --- examples and batches --------------------------------------------------------------------------------------

VOCAB = VocabTokenizer(["the", "meeting", "is", "on", "with"])


def test_make_example_copyable_oov_and_unk():
    data = SummaryDataConfig()
    e = make_example(VOCAB, "The meeting is on Friday with Zed", "Meeting Friday zed banana", data)
    v = VOCAB.vocab_size
    assert e.oovs == ["friday", "zed"]
    assert e.src_ext == [4, 5, 6, 7, v, 8, v + 1]
    assert e.src == [4, 5, 6, 7, UNK, 8, UNK]
    assert e.tgt == [5, v, v + 1, UNK]                                     # banana is not in the source
    assert make_example(VOCAB, "the meeting", None, data).tgt is None


def test_make_example_truncates():
    data = SummaryDataConfig(max_src_len=3, max_tgt_len=2)
    e = make_example(VOCAB, "The meeting is on Friday", "friday meeting is", data)
    assert e.src == [4, 5, 6] and e.oovs == []
    assert e.tgt == [UNK, 5]                     # friday was cut from the source, so it is no longer copyable


def test_make_batch_pads_and_counts_oovs():
    data = SummaryDataConfig()
    examples = [make_example(VOCAB, "the meeting is on friday with zed", "zed", data),
                make_example(VOCAB, "meeting", "meeting", data)]
    batch = make_batch(examples, [1, 0])
    v = VOCAB.vocab_size
    assert batch.num_oov == 2 and batch.lengths.tolist() == [1, 7] and batch.index == [1, 0]
    assert batch.src_ext[0].tolist() == [5] + [PAD] * 6
    assert batch.tgt_in.tolist() == [[BOS, 5], [BOS, v + 1]]
    assert batch.tgt_out.tolist() == [[5, EOS], [v + 1, EOS]]


def test_no_pointer_training_maps_copyable_targets_to_unk():
    """Without the pointer a copyable OOV target cannot be generated: it is scored as <unk> (was an index error)."""
    tok = VocabTokenizer(["the", "cat", "sat"])
    setup = make_setup("summarize", "tiny", overrides={"model.pointer": False})
    c = setup.model.seq2seq
    c.src_vocab_size = c.tgt_vocab_size = tok.vocab_size
    torch.manual_seed(0)
    model = PointerGenerator(setup.model)
    task = SummaryTask(setup, tok, [("zorblax sat the cat", "zorblax sat")], [])
    batch = task.batches(0)[0]
    assert batch.tgt_out[0, 0] == tok.vocab_size                           # the example keeps the copy target
    loss, stats = task.loss(model, batch)
    assert torch.isfinite(loss) and stats["tokens"] == 3


@pytest.mark.parametrize("beam", [1, 3])
def test_summarizer_on_a_random_model(beam):
    tok = VocabTokenizer(["the", "meeting", "is", "on", "with", "friday", "budget", ".", ",", "report",
                          "please", "review", "attached", "team", "project", "next"])
    model = tiny_model(vocab=tok.vocab_size)
    summarizer = Summarizer(model, tok, make_setup("summarize"))
    documents = ["The meeting is on Friday with Zed.", "", "please review the attached budget report , qwerty",
                 "   ", "team"]
    decode = SummaryDecodeConfig(beam=beam, max_len=6, min_len=2)
    out = summarizer.summarize(documents, decode)
    assert len(out) == len(documents) and all(isinstance(s, str) for s in out)
    assert out[1] == "" and out[3] == ""
    assert all(len(s.split()) <= 6 for s in out)
    hyps = summarizer.summarize_hyps(documents, decode)
    assert [tok.decode(h.tokens, e.oovs, d) for (h, e), d in zip(hyps, documents)] == out   # in document order
    assert [tok.decode(h.tokens, e.oovs).lower() for h, e in hyps] == [s.lower() for s in out]   # only casing
    for h, e in hyps:
        marked = summarizer.copied(h, e)
        assert [w.lower() for w, _ in marked] == tok.decode_words(h.tokens, e.oovs)
        assert all(c for w, c in marked if w.lower() in e.oovs)             # an OOV in the output was copied


# --- overfitting through the copy path ---------------------------------------------------------------------------

PAIRS = [("the meeting is moved to friday afternoon , please confirm", "meeting moved to friday"),
         ("attached is the budget report for review by the team", "budget report for review"),
         ("the zanzibar project kickoff is next week in the office", "zanzibar project kickoff")]


def test_overfits_three_pairs_and_copies_an_oov_word():
    words = sorted({w for d, s in PAIRS for w in VocabTokenizer.words(d + " " + s)} - {"zanzibar"})
    tok = VocabTokenizer(words)
    assert "zanzibar" not in tok.stoi
    setup = make_setup("summarize", "tiny", overrides={"model.seq2seq.dropout": 0.0, "model.seq2seq.emb_dropout": 0.0,
                                                   "decode.min_len": 0})
    c = setup.model.seq2seq
    c.src_vocab_size = c.tgt_vocab_size = tok.vocab_size
    torch.manual_seed(0)
    model = PointerGenerator(setup.model)
    task = SummaryTask(setup, tok, PAIRS, [(d, [s]) for d, s in PAIRS])
    (batch,) = task.batches(0)
    assert tok.vocab_size in batch.tgt_out                                 # zanzibar: a copy target
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        loss, _ = task.loss(model.train(), batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.2
    summarizer = Summarizer(model, tok, setup)
    documents = [d for d, _ in PAIRS]
    free = dict(min_len=0, no_repeat_ngram=0)
    assert summarizer.summarize(documents, SummaryDecodeConfig(beam=1, **free)) == [s.capitalize() for _, s in PAIRS]
    assert summarizer.summarize(documents, SummaryDecodeConfig(beam=3, min_len=2)) == [s.capitalize() for _, s in PAIRS]
    for beam in (1, 3):                 # greedy honours the length floor and n-gram blocking too
        longer = summarizer.summarize(documents, SummaryDecodeConfig(beam=beam, min_len=6, no_repeat_ngram=1))
        words = [VocabTokenizer.words(s) for s in longer]
        assert all(len(w) >= 6 and len(set(w)) == len(w) for w in words), longer
    h, e = summarizer.summarize_hyps(documents[2:], SummaryDecodeConfig(beam=1, **free))[0]
    assert h.tokens[0] == tok.vocab_size and e.oovs == ["zanzibar"]        # generated through the copy path
    assert task.validate(model).score == pytest.approx(100)


def test_lead_baseline():
    assert lead_baseline(["one two three four", "short", ""], 2) == ["one two", "short", ""]
    assert lead_baseline(["a\nb  c\td"], 3) == ["a b c"]


# --- corpora, fields and evaluation rows ---------------------------------------------------------------------------

@pytest.fixture
def aeslc_root(tmp_path):
    """A data root with a two-split AESLC look-alike."""
    (tmp_path / "aeslc").mkdir()
    (tmp_path / "aeslc" / "train.jsonl").write_text(jsonl_records(EMAILS), encoding="utf-8")
    (tmp_path / "aeslc" / "dev.jsonl").write_text(jsonl_records(EMAILS[:2]), encoding="utf-8")
    return tmp_path


def test_a_named_corpus_knows_its_fields(aeslc_root):
    train = read_pairs("aeslc", "train", aeslc_root)
    assert train[0] == (EMAILS[0][0], [EMAILS[0][1]])                          # subject_line on train
    dev = read_pairs("aeslc", "dev", aeslc_root)
    assert dev[0] == (EMAILS[0][0], [EMAILS[0][1].lower(), EMAILS[0][1] + " update", "re " + EMAILS[0][1]])
    assert read_pairs("aeslc", "dev", aeslc_root, tgt_fields=("ann1",))[1][1] == [EMAILS[1][1] + " update"]


def test_a_jsonl_file_needs_its_fields(aeslc_root):
    path = aeslc_root / "aeslc" / "dev.jsonl"
    assert read_pairs(jsonl=path, src_field="email_body", tgt_fields=("ann0", "ann2"))[1][1] == \
        [EMAILS[1][1].lower(), "re " + EMAILS[1][1]]
    for fields in ({"src_field": "email_body"}, {"tgt_fields": ("ann0",)}, {}):
        with pytest.raises(DataError, match="document field and summary fields"):
            read_pairs(jsonl=path, **fields)
    with pytest.raises(DataError, match="no field 'body'"):
        read_pairs(jsonl=path, src_field="body", tgt_fields=("ann0",))


def test_evaluation_pairs_add_the_original_subject_as_an_extra_row(aeslc_root):
    pairs, extra = evaluation_pairs("aeslc", "dev", aeslc_root)
    assert extra == "subject_line" and len(pairs[0][1]) == 4 and pairs[0][1][-1] == EMAILS[0][1]
    pairs, extra = evaluation_pairs("aeslc", "dev", aeslc_root, ref_fields=("ann0", "subject_line"))
    assert extra is None and len(pairs[0][1]) == 2
    path = aeslc_root / "aeslc" / "dev.jsonl"
    pairs, extra = evaluation_pairs(jsonl=path, src_field="email_body", ref_fields=("ann0",))
    assert extra is None and pairs[1] == (EMAILS[1][0], [EMAILS[1][1].lower()])


def test_evaluate_scores_each_system_and_the_extra_row(aeslc_root, summarize_model):
    summarizer = Summarizer.load(summarize_model.checkpoint)
    pairs, extra = evaluation_pairs("aeslc", "dev", aeslc_root)
    rows = evaluate(summarizer, pairs, SummaryDecodeConfig(beam=2), leads=(3,), extra=extra)
    assert set(rows) == {"model", "model vs subject_line", "lead-3", "lead-3 vs subject_line"}
    assert all(set(r) == {"1", "2", "L", "words"} and 0 <= r["1"] <= 100 for r in rows.values())
    assert rows["lead-3"]["words"] == 3
    # the extra row is the lead against the subject alone; the main row against the annotations alone
    from nmt.metrics import rouge
    leads = lead_baseline([d for d, _ in pairs], 3)
    assert rows["lead-3 vs subject_line"] == rouge([refs[3:] for _, refs in pairs], leads)
    assert rows["lead-3"] == rouge([refs[:3] for _, refs in pairs], leads)


def test_the_tiny_trained_model_summarizes(summarize_model):
    summarizer = Summarizer.load(summarize_model.checkpoint)
    out = summarizer.summarize([d for d, _ in EMAILS[:3]] + [""], SummaryDecodeConfig(beam=3, max_len=5, min_len=1))
    assert len(out) == 4 and out[3] == "" and all(len(s.split()) <= 5 for s in out)
    assert summarizer.setup.data.min_count == 1                          # the run's own setup, from the checkpoint


# --- the real AESLC dev set (skipped where no data folder holds it) ----------------------------------------------

def test_real_aeslc_dev_has_three_annotations(shared_data):
    root = shared_data("aeslc", "dev.jsonl").parents[1]
    pairs = read_pairs("aeslc", "dev", root, tgt_fields=("ann0", "ann1", "ann2"))
    assert len(pairs) == 1960
    assert all(isinstance(d, str) and len(refs) == 3 for d, refs in pairs)
    assert sum(bool(d.strip()) for d, _ in pairs) > 1900
    pairs, extra = evaluation_pairs("aeslc", "dev", root)
    assert extra == "subject_line" and all(len(refs) == 4 for _, refs in pairs[:50])
