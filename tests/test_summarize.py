"""Summarisation: the vocabulary tokenizer with OOV extensions, examples, the pointer-generator with coverage,
length limits and n-gram blocking in decoding, overfitting through the copy path, ROUGE, and the CLI."""
import json
from pathlib import Path

import pytest
import torch

from nmt.config import RNNConfig, Seq2SeqConfig, SummarizerConfig, SummaryDataConfig, SummaryDecodeConfig
from nmt.decoding import beam_search, greedy, repeated_ngrams
from nmt.models.pointer import PointerGenerator
from nmt.summarization import (SummaryTask, Summarizer, lead_baseline, make_batch, make_example, make_setup,
                               read_pairs, rouge)
from nmt.tokenizers import BOS, EOS, PAD, UNK, TokenizerError, VocabTokenizer, tokenizer_from_state
from tests.cli_util import one_line_error, run

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"
V = 20          # vocabulary of the random tiny models


# --- the tokenizer -------------------------------------------------------------------------------------------

def test_vocab_tokenizer_train_counts_and_specials():
    tok = VocabTokenizer.train(["The cat sat.", "the cat ran!", "a dog"], max_size=100, min_count=2)
    assert tok.itos == ["<pad>", "<s>", "</s>", "<unk>", "cat", "the"]          # count, then alphabetical
    assert VocabTokenizer.words("Re: Q3 budget, e-mail bob@x.com!") == \
        ["re", ":", "q3", "budget", ",", "e-mail", "bob@x.com", "!"]
    capped = VocabTokenizer.train(["a a a b b c"], max_size=5, min_count=1)
    assert capped.itos[4:] == ["a"] and capped.vocab_size == 5


def test_vocab_tokenizer_extended_round_trip():
    tok = VocabTokenizer(["the", "cat", "sat", "on", ",", "."])
    words = VocabTokenizer.words("The cat sat on Zorblax's mat, zorblax's mat.")
    ids, oovs = tok.encode_extended(words)
    assert oovs == ["zorblax's", "mat"]
    v = tok.vocab_size
    assert ids == [4, 5, 6, 7, v, v + 1, 8, v, v + 1, 9]                # a repeated OOV keeps its id
    assert tok.encode(words) == [i if i < v else UNK for i in ids]
    assert tok.decode(ids, oovs) == "the cat sat on zorblax's mat, zorblax's mat."
    assert tok.decode_words(ids, oovs)[4] == "zorblax's"
    assert tok.decode([BOS, 4, UNK, PAD, EOS]) == "the <unk>"             # specials dropped, <unk> spelled
    more, same = tok.encode_extended(["mat", "hat"], oovs)                # extends the list in place
    assert more == [v + 1, v + 2] and same is oovs and oovs[-1] == "hat"


def test_vocab_tokenizer_state_round_trip_and_empty_input():
    tok = VocabTokenizer.train(["the cat sat on the mat", "the cat ran"], min_count=1)
    back = tokenizer_from_state(tok.to_state())
    assert isinstance(back, VocabTokenizer) and back.itos == tok.itos
    words = VocabTokenizer.words("the dog sat")
    assert back.encode_extended(words) == tok.encode_extended(words)
    for texts in ([], ["", "   "]):
        with pytest.raises(TokenizerError, match="empty"):
            VocabTokenizer.train(texts)


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


# --- the pointer-generator -------------------------------------------------------------------------------------

def tiny_model(pointer=True, coverage=True, attention="bahdanau", seed=0, vocab=V) -> PointerGenerator:
    torch.manual_seed(seed)
    s2s = Seq2SeqConfig(src_vocab_size=vocab, tgt_vocab_size=vocab, embed_size=8, decoder_hidden=16,
                        encoder=RNNConfig(hidden_size=8, bidirectional=True), attention=attention,
                        dropout=0.0, emb_dropout=0.0)
    return PointerGenerator(SummarizerConfig(seq2seq=s2s, pointer=pointer, coverage=coverage)).eval()


def source_batch():
    """Two documents with per-document OOVs: row 0 has V and V+1, row 1 only V (its own word)."""
    src_ext = torch.tensor([[5, V, 7, V + 1, 9, V], [V, 6, 8, 0, 0, 0]])
    lengths = torch.tensor([6, 3])
    return src_ext.masked_fill(src_ext >= V, UNK), src_ext, lengths, 2


VARIANTS = [(True, True), (True, False), (False, True), (False, False)]


@pytest.mark.parametrize("pointer,coverage", VARIANTS)
def test_decode_gives_log_probabilities_over_the_extended_vocabulary(pointer, coverage):
    model = tiny_model(pointer, coverage)
    src, src_ext, lengths, num_oov = source_batch()
    enc, state = model.encode(src, lengths, src_ext, num_oov)
    y = torch.tensor([[BOS, V, 5, V + 1, 7], [BOS, 6, V, 8, 8]])           # extended ids are valid inputs
    logp, _, weights = model.decode(enc, y, state)
    assert logp.shape == (2, 5, V + num_oov if pointer else V)
    assert torch.allclose(logp.exp().sum(-1), torch.ones(2, 5), atol=1e-4)
    assert weights.shape == (2, 5, 6)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 5), atol=1e-5)
    assert weights[1, :, 3:].eq(0).all()                                   # padding gets no attention
    forward_logp, cov_loss = model(src, lengths, y, src_ext, num_oov)
    assert torch.allclose(forward_logp, logp, atol=1e-6) and cov_loss.shape == (2, 5)
    if not coverage:
        assert cov_loss.eq(0).all()


@pytest.mark.parametrize("pointer,coverage", VARIANTS)
def test_step_by_step_decoding_equals_teacher_forcing(pointer, coverage):
    """The state (decoder RNN and coverage vector) carried one step at a time gives the all-at-once result."""
    model = tiny_model(pointer, coverage)
    src, src_ext, lengths, num_oov = source_batch()
    enc, state = model.encode(src, lengths, src_ext, num_oov)
    y = torch.tensor([[BOS, V, 5, V + 1], [BOS, 6, V, 8]])
    whole, _, whole_w = model.decode(enc, y, state)
    steps, ws = [], []
    for t in range(y.size(1)):
        logp, state, w = model.decode(enc, y[:, t:t + 1], state)
        steps.append(logp)
        ws.append(w)
    assert torch.allclose(torch.cat(steps, 1), whole, atol=1e-5)
    assert torch.allclose(torch.cat(ws, 1), whole_w, atol=1e-6)


@pytest.mark.parametrize("pointer,coverage", VARIANTS)
def test_pointer_generator_is_padding_invariant(pointer, coverage):
    model = tiny_model(pointer, coverage)
    short_ext = torch.tensor([[V, 6, 8]])                                  # one OOV of its own
    y = torch.tensor([[BOS, V, 6, 9]])
    alone_enc, alone_state = model.encode(short_ext.masked_fill(short_ext >= V, UNK), torch.tensor([3]), short_ext, 1)
    alone, _, alone_w = model.decode(alone_enc, y, alone_state)
    src, src_ext, lengths, num_oov = source_batch()
    # the long document first, so the short one is padded
    enc, state = model.encode(src, lengths, src_ext, num_oov)
    batched, _, batched_w = model.decode(enc, torch.cat([torch.tensor([[BOS, 5, 7, 9]]), y]), state)
    width = alone.size(-1)                                                 # V (+ 1 OOV with the pointer)
    assert torch.allclose(batched[1, :, :width], alone[0], atol=1e-5)
    assert torch.allclose(batched_w[1, :, :3], alone_w[0], atol=1e-6)
    if pointer:     # the batch's extra OOV slot is not a word of this document: (clamped) zero probability
        assert batched[1, :, width:].exp().max() <= 1e-11


@pytest.mark.parametrize("coverage", [True, False])
def test_pointer_gives_source_oovs_probability_at_every_step(coverage):
    model = tiny_model(True, coverage)
    src, src_ext, lengths, num_oov = source_batch()
    enc, state = model.encode(src, lengths, src_ext, num_oov)
    y = torch.tensor([[BOS, 5, 7, 9, 9, 5, 7], [BOS, 6, 8, 8, 6, 6, 8]])
    probs = model.decode(enc, y, state)[0].exp()                           # (B, T, X)
    assert (probs[0, :, V] > 1e-6).all() and (probs[0, :, V + 1] > 1e-6).all()
    assert (probs[1, :, V] > 1e-6).all()
    assert (probs[1, :, V + 1] <= 1e-11).all()                             # row 1 has no second OOV to copy


def test_coverage_loss_matches_its_definition():
    model = tiny_model(True, True)
    src, src_ext, lengths, num_oov = source_batch()
    enc, state = model.encode(src, lengths, src_ext, num_oov)
    y = torch.tensor([[BOS, V, 5, V + 1, 7, 9], [BOS, 6, V, 8, 8, 6]])
    _, (_, coverage), weights, cov_loss = model.decode_with_coverage(enc, y, state)
    assert (cov_loss >= 0).all() and cov_loss[:, 0].eq(0).all()           # nothing covered before the first step
    before = torch.cumsum(weights, 1) - weights                            # c_t = sum of a_t' for t' < t
    expected = torch.minimum(weights, before).sum(-1)                      # (B, T)
    assert torch.allclose(cov_loss, expected, atol=1e-6)
    assert torch.allclose(coverage, weights.sum(1), atol=1e-5)             # the returned state is the full sum
    assert cov_loss[:, 1:].sum() > 0
    # each step's loss is at most 1 (attention sums to 1), and the loss enters SummaryTask.loss non-negatively
    assert (cov_loss <= 1 + 1e-6).all()


@pytest.mark.parametrize("attention", ["dot", "general"])
def test_coverage_needs_bahdanau_attention(attention):
    with pytest.raises(ValueError, match="bahdanau"):
        tiny_model(True, True, attention=attention)
    model = tiny_model(True, False, attention=attention)                  # without coverage any attention works
    src, src_ext, lengths, num_oov = source_batch()
    enc, state = model.encode(src, lengths, src_ext, num_oov)
    logp = model.decode(enc, torch.tensor([[BOS], [BOS]]), state)[0]
    assert torch.allclose(logp.exp().sum(-1), torch.ones(2, 1), atol=1e-4)


def test_no_pointer_training_maps_copyable_targets_to_unk():
    """Without the pointer a copyable OOV target cannot be generated: it is scored as <unk> (was an index error)."""
    tok = VocabTokenizer(["the", "cat", "sat"])
    setup = make_setup("tiny", overrides={"model.pointer": False})
    c = setup.model.seq2seq
    c.src_vocab_size = c.tgt_vocab_size = tok.vocab_size
    torch.manual_seed(0)
    model = PointerGenerator(setup.model)
    task = SummaryTask(setup, tok, [("zorblax sat the cat", "zorblax sat")], [])
    batch = task.batches(0)[0]
    assert batch.tgt_out[0, 0] == tok.vocab_size                           # the example keeps the copy target
    loss, stats = task.loss(model, batch)
    assert torch.isfinite(loss) and stats["tokens"] == 3


# --- decoding ----------------------------------------------------------------------------------------------------

def test_repeated_ngrams_bans_exactly_the_completing_tokens():
    history = torch.tensor([[5, 6, 7, 6, 8, 6], [5, 6, 7, 5, 6, 9]])
    ban = repeated_ngrams(history, 2, 10)
    assert ban.shape == (2, 10)
    assert ban[0].nonzero().flatten().tolist() == [7, 8]                  # 6 -> 7 and 6 -> 8 already seen
    assert ban[1].nonzero().flatten().tolist() == []                      # nothing followed 9
    tri = repeated_ngrams(torch.tensor([[5, 6, 7, 5, 6], [1, 2, 3, 4, 5]]), 3, 10)
    assert tri[0].nonzero().flatten().tolist() == [7] and not tri[1].any()
    uni = repeated_ngrams(history, 1, 10)
    assert uni[0].nonzero().flatten().tolist() == [5, 6, 7, 8]            # n=1: every token seen
    assert not repeated_ngrams(torch.tensor([[5, 6]]), 3, 10).any()       # history shorter than n
    assert not repeated_ngrams(history, 0, 10).any()


def bigrams(tokens):
    return list(zip(tokens, tokens[1:]))


def biased(token: int, amount: float, **kw) -> PointerGenerator:
    model = tiny_model(**kw)
    with torch.no_grad():
        model.output.bias[token] += amount
    return model


def test_beam_no_repeat_ngram_never_repeats_a_bigram():
    model = biased(7, 8.0)                      # the model loves token 7: unblocked it says 7 7 7 ...
    src, src_ext, lengths, num_oov = source_batch()
    args = dict(bos=BOS, eos=EOS, beam=4, n_best=4, min_len=10, max_len=12, encode_args=(src_ext, num_oov))
    free = beam_search(model, src, lengths, **args)
    assert any(len(set(bigrams(h.tokens))) < len(bigrams(h.tokens)) for hyps in free for h in hyps)
    blocked = beam_search(model, src, lengths, no_repeat_ngram=2, **args)
    for hyps in blocked:
        for h in hyps:
            assert len(h.tokens) >= 10
            assert len(set(bigrams(h.tokens))) == len(bigrams(h.tokens)), h.tokens


def test_min_len_and_max_len():
    src, src_ext, lengths, num_oov = source_batch()
    common = dict(bos=BOS, eos=EOS, encode_args=(src_ext, num_oov))
    eager = biased(EOS, 10.0)                                               # wants to stop at once
    assert all(len(h[0].tokens) == 0 for h in beam_search(eager, src, lengths, beam=3, max_len=10, **common))
    for hyps in beam_search(eager, src, lengths, beam=3, n_best=3, min_len=5, max_len=10, **common):
        assert all(len(h.tokens) >= 5 for h in hyps)
    chatty = biased(EOS, -30.0)                                             # never wants to stop
    for hyps in beam_search(chatty, src, lengths, beam=3, n_best=3, max_len=6, **common):
        assert all(len(h.tokens) == 6 for h in hyps)
    assert [len(h[0].tokens) for h in greedy(chatty, src, lengths, max_len=6, **common)] == [6, 6]
    # the max_len_ratio cap applies without max_len: 2 * source length + 10
    assert [len(h[0].tokens) for h in greedy(chatty, src, lengths, **common)] == [22, 16]


def test_beam_copies_oovs_and_keeps_attention():
    model = tiny_model()
    src, src_ext, lengths, num_oov = source_batch()
    hyps = beam_search(model, src, lengths, bos=BOS, eos=EOS, beam=3, max_len=5, keep_attention=True,
                       encode_args=(src_ext, num_oov))
    for b, (h,) in enumerate(hyps):
        assert h.attention.shape == (len(h.tokens) + 1, int(lengths[b]))
        assert torch.allclose(h.attention.sum(-1), torch.ones(len(h.tokens) + 1), atol=1e-5)
        assert all(t < V + num_oov for t in h.tokens)


@pytest.mark.parametrize("beam", [1, 3])
def test_summarizer_on_a_random_model(beam):
    tok = VocabTokenizer(["the", "meeting", "is", "on", "with", "friday", "budget", ".", ",", "report",
                          "please", "review", "attached", "team", "project", "next"])
    model = tiny_model(vocab=tok.vocab_size)
    summarizer = Summarizer(model, tok, SummaryDataConfig())
    documents = ["The meeting is on Friday with Zed.", "", "please review the attached budget report , qwerty",
                 "   ", "team"]
    decode = SummaryDecodeConfig(beam=beam, max_len=6, min_len=2)
    out = summarizer.summarize(documents, decode)
    assert len(out) == len(documents) and all(isinstance(s, str) for s in out)
    assert out[1] == "" and out[3] == ""
    assert all(len(s.split()) <= 6 for s in out)
    hyps = summarizer.summarize_hyps(documents, decode)
    assert [tok.decode(h.tokens, e.oovs) for h, e in hyps] == out         # the same decode, in document order
    for h, e in hyps:
        marked = summarizer.copied(h, e)
        assert [w for w, _ in marked] == tok.decode_words(h.tokens, e.oovs)
        assert all(c for w, c in marked if w in e.oovs)                     # an OOV in the output was copied


# --- overfitting through the copy path ---------------------------------------------------------------------------

PAIRS = [("the meeting is moved to friday afternoon , please confirm", "meeting moved to friday"),
         ("attached is the budget report for review by the team", "budget report for review"),
         ("the zanzibar project kickoff is next week in the office", "zanzibar project kickoff")]


def test_overfits_three_pairs_and_copies_an_oov_word():
    words = sorted({w for d, s in PAIRS for w in VocabTokenizer.words(d + " " + s)} - {"zanzibar"})
    tok = VocabTokenizer(words)
    assert "zanzibar" not in tok.stoi
    setup = make_setup("tiny", overrides={"model.seq2seq.dropout": 0.0, "model.seq2seq.emb_dropout": 0.0})
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
    summarizer = Summarizer(model, tok, setup.data)
    documents = [d for d, _ in PAIRS]
    assert summarizer.summarize(documents, SummaryDecodeConfig(beam=1)) == [s for _, s in PAIRS]
    assert summarizer.summarize(documents, SummaryDecodeConfig(beam=3, min_len=2)) == [s for _, s in PAIRS]
    h, e = summarizer.summarize_hyps(documents[2:], SummaryDecodeConfig(beam=1))[0]
    assert h.tokens[0] == tok.vocab_size and e.oovs == ["zanzibar"]        # generated through the copy path
    assert task.validate(model).score == pytest.approx(100)


# --- ROUGE and the lead baseline -------------------------------------------------------------------------------------

def test_rouge_identical_is_100():
    scores = rouge([["meeting moved to friday"]], ["meeting moved to friday"])
    assert scores["1"] == pytest.approx(100) and scores["2"] == pytest.approx(100)
    assert scores["L"] == pytest.approx(100) and scores["words"] == 4


def test_rouge_averages_references_and_documents():
    from rouge_score import rouge_scorer
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    refs = [["budget meeting on friday", "friday meetings moved", "quarterly budget review"], ["team lunch"]]
    hyps = ["budget meetings friday", "lunch with the team today"]
    scores = rouge(refs, hyps)
    for key in ("1", "2", "L"):
        per_doc = [sum(scorer.score(r, h)[f"rouge{key}"].fmeasure for r in rs) / len(rs) for rs, h in zip(refs, hyps)]
        assert scores[key] == pytest.approx(100 * sum(per_doc) / 2)
    assert scores["words"] == pytest.approx(4.0)
    assert 0 < scores["1"] < 100
    assert rouge([["a b"]], [""])["1"] == 0


def test_lead_baseline():
    assert lead_baseline(["one two three four", "short", ""], 2) == ["one two", "short", ""]
    assert lead_baseline(["a\nb  c\td"], 3) == ["a b c"]


# --- the command line ----------------------------------------------------------------------------------------------


EMAILS = [
    ("Hi team, the quarterly budget meeting is moved to Friday afternoon. Please confirm.", "Budget meeting moved"),
    ("Attached is the draft contract for the Zanzibar project. Comments by Monday please.", "Zanzibar contract draft"),
    ("The server will be down for maintenance tonight from 10pm to midnight.", "Server maintenance tonight"),
    ("Please review the attached report on gas trading volumes for last week.", "Gas trading report"),
    ("Lunch with the new analysts is scheduled for Thursday at noon in the main room.", "Lunch Thursday"),
    ("Can you send me the latest version of the pipeline capacity spreadsheet?", "Pipeline capacity spreadsheet"),
]


def jsonl_records(pairs) -> str:
    rows = [{"email_body": d, "subject_line": s, "ann0": s.lower(), "ann1": s + " update", "ann2": "re " + s}
            for d, s in pairs]
    return "".join(json.dumps(r) + "\n" for r in rows)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("summarize")
    (root / "train.jsonl").write_text(jsonl_records(EMAILS * 2), encoding="utf-8")
    (root / "dev.jsonl").write_text(jsonl_records(EMAILS[:3]), encoding="utf-8")
    result = run("train", "summarize", "--train-jsonl", root / "train.jsonl", "--dev-jsonl", root / "dev.jsonl",
                 "--preset", "tiny", "--max-steps", 20, "--out", root / "run", "--set", "train.threads=1",
                 "--set", "data.min_count=1")
    assert result.exit_code == 0, result.output
    assert (root / "run" / "best.pt").exists() and (root / "run" / "last.pt").exists()
    return root


def test_cli_train_writes_metrics(trained):
    records = [json.loads(x) for x in (trained / "run" / "metrics.jsonl").read_text().splitlines()]
    valid = [r for r in records if r["type"] == "valid"]
    assert valid and valid[-1]["step"] == 20
    assert all(0 <= r["rouge1"] <= 100 and {"rouge2", "rougeL", "words"} <= set(r) for r in valid)


def test_cli_summarize_text_json(trained):
    result = run("summarize", "-m", trained / "run" / "best.pt", "--json", EMAILS[0][0])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert len(rows) == 1 and isinstance(rows[0]["summary"], str)
    two = run("summarize", "-m", trained / "run" / "best.pt", "--json", EMAILS[0][0], EMAILS[1][0])
    assert len(json.loads(two.stdout)) == 2                                # each argument is one document


def test_cli_summarize_input_files(trained, tmp_path):
    model = trained / "run" / "best.pt"
    whole = tmp_path / "email.txt"
    whole.write_text("\n".join(d for d, _ in EMAILS[:3]) + "\n", encoding="utf-8")
    result = run("summarize", "-m", model, "--json", "--input", whole)
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)) == 1                             # the whole file is one document
    lines = run("summarize", "-m", model, "--input-lines", whole, "--beam", 1)
    assert lines.exit_code == 0, lines.output
    assert len(lines.stdout.splitlines()) == 3
    records = tmp_path / "records.jsonl"
    records.write_text(jsonl_records(EMAILS[:4]), encoding="utf-8")
    result = run("summarize", "-m", model, "--json", "--jsonl", records, "--field", "email_body")
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)) == 4


def test_cli_evaluate_json(trained):
    result = run("evaluate", "summarize", "--jsonl", trained / "dev.jsonl", "--json", "-m",
                 trained / "run" / "best.pt", "--lead", "8")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert {"model", "lead-8"} <= set(rows)
    for name in ("model", "lead-8"):
        assert set(rows[name]) == {"1", "2", "L", "words"}
        assert all(0 <= rows[name][k] <= 100 for k in ("1", "2", "L"))
    assert rows["lead-8"]["words"] == 8


def test_cli_bad_inputs(trained, tmp_path):
    model = trained / "run" / "best.pt"
    one_line_error(run("summarize", "-m", model, ""), "empty")
    one_line_error(run("summarize", "-m", model, "   ", "\t"), "empty")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    one_line_error(run("summarize", "-m", model, "--input", empty), "empty")
    one_line_error(run("summarize", "-m", model, "--input-lines", empty), "empty")
    missing = tmp_path / "missing.jsonl"
    missing.write_text(json.dumps({"email_body": "hello there"}) + "\n" + json.dumps({"body": "x"}) + "\n",
                       encoding="utf-8")
    one_line_error(run("summarize", "-m", model, "--jsonl", missing), "line 2", "email_body")
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps({"email_body": "hello"}) + "\n\n{not json\n", encoding="utf-8")
    one_line_error(run("summarize", "-m", model, "--jsonl", broken), "line 3", "not valid JSON")
    one_line_error(run("evaluate", "summarize", "--jsonl", broken, "-m", model), "line 1", "ann0")
    bad_eval = tmp_path / "bad_eval.jsonl"
    bad_eval.write_text(jsonl_records(EMAILS[:2]) + "{not json\n", encoding="utf-8")
    one_line_error(run("evaluate", "summarize", "--jsonl", bad_eval, "-m", model), "line 3", "not valid JSON")
    one_line_error(run("summarize", "-m", model, "--min-len", 5, "--max-len", 3, "hello there"), "--min-len")
    one_line_error(run("summarize", "-m", model, "--beam", 0, "hello there"), "--beam")
    one_line_error(run("summarize", "-m", tmp_path / "nope.pt", "hello there"), "not found")
    one_line_error(run("train", "summarize", "--train-jsonl", trained / "train.jsonl", "--preset", "tiny",
                       "--out", tmp_path / "r", "--set", "train.threads=1"), "--dev-jsonl")


def test_cli_other_task_checkpoint(trained):
    other = CHECKPOINTS / "multi30k-de-en.pt"
    if not other.exists():
        pytest.skip(f"{other} not present")
    one_line_error(run("summarize", "-m", other, "hello there"), "'translate' checkpoint", "'summarize'")
    one_line_error(run("evaluate", "summarize", "--jsonl", trained / "dev.jsonl", "-m", other), "'summarize'")


def test_cli_summarizes_a_very_long_document(trained):
    document = " ".join(["the", "budget", "meeting", "is", "on", "friday", "."] * 2858)[:200_000]
    assert len(document.split()) >= 20_000
    result = run("summarize", "-m", trained / "run" / "best.pt", "--json", document)
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert len(row["summary"].split()) <= 15


# --- the real AESLC dev set (skipped where shared/data is absent) ----------------------------------------------------

def test_real_aeslc_dev_has_three_annotations():
    path = SHARED / "aeslc" / "dev.jsonl"
    if not path.exists():
        pytest.skip(f"{path} not present")
    pairs = read_pairs("aeslc", "dev", SHARED, tgt_fields=("ann0", "ann1", "ann2"))
    assert len(pairs) == 1960
    assert all(isinstance(d, str) and len(refs) == 3 for d, refs in pairs)
    assert sum(bool(d.strip()) for d, _ in pairs) > 1900
