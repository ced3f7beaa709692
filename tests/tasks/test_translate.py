"""The translation task (nmt/tasks/translate.py): the loss, validation, and the Translator on the session's tiny
model: line order, blank lines, truncation, n-best lists, attention views."""
import pytest
import torch

from nmt.config import DecodeConfig
from nmt.tasks import make_setup
from nmt.tasks.translate import TranslationTask, Translator, build_model, smoothed_loss
from nmt.tokenizers import SentencePieceTokenizer
from tests.toydata import WORDS


@pytest.fixture(scope="module")
def translator(translate_model):
    return Translator.load(translate_model.checkpoint)


def test_smoothed_loss_counts_real_tokens_only():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 9)
    target = torch.tensor([[5, 6, 2, 0], [7, 2, 0, 0]])                    # 0 = padding
    loss, stats = smoothed_loss(logits, target, 0.0)
    real = target != 0
    expected = torch.nn.functional.cross_entropy(logits[real], target[real])
    assert stats["tokens"] == 5 and loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert stats["nll"] == pytest.approx(expected.item() * 5, rel=1e-5)
    picked, _ = smoothed_loss(logits[real], target, 0.0)                 # the model's `select` form
    assert picked.item() == pytest.approx(loss.item(), rel=1e-6)
    smoothed, stats_smoothed = smoothed_loss(logits, target, 0.1)
    assert smoothed.item() != pytest.approx(loss.item()) and stats_smoothed["nll"] == pytest.approx(stats["nll"])


def test_task_batches_loss_validation_and_checkpoint():
    pairs = [(s, " ".join(reversed(s.split()))) for s in ("der hund", "die katze läuft", "ein kind spielt im park")]
    tok = SentencePieceTokenizer.train([p for pair in pairs * 10 for p in pair] + WORDS, vocab_size=40)
    toks = {"src": tok, "tgt": tok}
    setup = make_setup("translate", "tiny", overrides={"train.batch_tokens": 0, "train.batch_size": 2})
    torch.manual_seed(0)
    model = build_model(setup, toks)
    assert model.config.src_vocab_size == tok.vocab_size and model.config.tie_src_tgt      # one joint tokenizer
    task = TranslationTask(setup, toks, pairs, pairs[:2], meta={"data": "toy"})
    batches = task.batches(0)
    assert len(batches) == 2 and sorted(i for b in batches for i in b.index.tolist()) == [0, 1, 2]
    assert [b.index.tolist() for b in task.batches(0)] == [b.index.tolist() for b in batches]   # same epoch, same
    loss, stats = task.loss(model.train(), batches[0])
    assert loss.item() > 0 and stats["tokens"] == batches[0].num_tgt_tokens
    result = task.validate(model.eval())
    assert set(result.metrics) == {"valid_ppl", "bleu"} and result.score == result.metrics["bleu"]
    assert len(result.samples) == 2 and result.samples[0][:2] == pairs[0]
    ckpt = task.make_checkpoint(model)
    assert ckpt.task == "translate" and ckpt.meta == {"data": "toy"} and set(ckpt.tokenizers) == {"src", "tgt"}
    lines = [s for s, _ in pairs]                               # the checkpoint alone is enough to translate
    direct = Translator(model, tok, tok).translate(lines, DecodeConfig(beam=2))
    assert Translator.from_checkpoint(ckpt).translate(lines, DecodeConfig(beam=2)) == direct


def test_lines_stay_in_order_and_blank_lines_stay_blank(translator):
    lines = ["der hund läuft", "", "ein kind", "   ", "die katze sitzt im park"]
    out = translator.translate(lines, DecodeConfig(beam=2))
    assert len(out) == 5 and out[1] == "" and out[3] == ""
    alone = [translator.translate([line], DecodeConfig(beam=2))[0] for line in lines]
    assert out == alone                                          # batching (and its sorting) changes nothing
    assert translator.translate(lines, DecodeConfig(beam=1, greedy_batch_tokens=1)) == \
        translator.translate(lines, DecodeConfig(beam=1))     # nor does the batch size


def test_truncation_length_comes_from_the_decode_config(translator):
    long_line = " ".join(["hund"] * 40)
    pieces = len(translator.src_tok.encode(long_line))
    assert pieces >= 40
    translator.translate([long_line, "der hund"], DecodeConfig(beam=1, max_src_tokens=10))
    assert translator.truncated == 1
    translator.translate([long_line], DecodeConfig(beam=1, max_src_tokens=pieces))
    assert translator.truncated == 0
    assert not hasattr(translator, "max_src_tokens")


def test_n_best_hypotheses_are_ranked(translator):
    (hyps,) = translator.translate_hyps(["der hund läuft"], DecodeConfig(beam=4, n_best=3))
    assert len(hyps) == 3 and hyps[0].score >= hyps[1].score >= hyps[2].score
    assert len({tuple(h.tokens) for h in hyps}) == 3


@pytest.mark.parametrize("beam", [1, 3])
def test_attention_rows_sum_to_one_and_views_match_the_pieces(translator, beam):
    decode = DecodeConfig(beam=beam, max_src_tokens=3)
    lines = ["der hund läuft im park", "", "ein kind"]
    hyps = translator.translate_hyps(lines, decode, keep_attention=True)
    assert hyps[1] == []
    for line, h in ((lines[0], hyps[0][0]), (lines[2], hyps[2][0])):
        assert h.attention.shape[0] == len(h.tokens) + 1
        assert torch.allclose(h.attention.sum(-1), torch.ones(h.attention.shape[0]), atol=1e-4)
        view = translator.attention_view(line, h, decode)
        assert view["source"] == translator.src_tok.pieces(line)[:3]              # truncated like the input
        assert view["target"][-1] == "</s>" and len(view["target"]) == len(view["weights"])
        assert all(len(row) == len(view["source"]) for row in view["weights"])
        assert view["translation"] == translator.tgt_tok.decode(h.tokens)


def test_the_shipped_model_translates(shipped):
    translator = Translator.load(shipped("translate"))
    hyps = translator.translate_hyps(["Ein Mann fährt Fahrrad.", "", "Zwei Hunde."], DecodeConfig(beam=3),
                                     keep_attention=True)
    assert hyps[1] == [] and all(h[0].tokens for h in (hyps[0], hyps[2]))
    assert "man" in translator.tgt_tok.decode(hyps[0][0].tokens).lower()


def test_confidence_matches_the_greedy_decoder(translator):
    """Teacher-forced mean log-probability per token equals the step-by-step decoder's summed log-probability
    divided by the tokens and </s> (for outputs that ended before the length cap)."""
    lines = ["der hund läuft", "", "ein kind spielt im park"]
    decode = DecodeConfig(beam=1, max_len_ratio=5.0)
    hyps = translator.translate_hyps(lines, decode)
    confidence = translator.confidence(lines, [h[0].tokens if h else [] for h in hyps], decode)
    assert confidence[1] is None
    for h, c in zip((hyps[0], hyps[2]), (confidence[0], confidence[2])):
        assert c == pytest.approx(h[0].score / (len(h[0].tokens) + 1), abs=1e-4) and c <= 0


def test_the_shipped_model_is_less_sure_of_news_than_of_captions(shipped):
    translator = Translator.load(shipped("translate"))
    lines = ["Zwei Hunde spielen im Schnee.",
             "Die Inflationsrate ist im Oktober überraschend auf 2,4 Prozent gestiegen."]
    decode = DecodeConfig()
    caption, news = translator.confidence(lines, [h[0].tokens for h in translator.translate_hyps(lines, decode)],
                                          decode)
    assert caption > decode.warn_confidence > news


def test_the_shipped_model_knows_everyday_german(shipped):
    translator = Translator.load(shipped("translate"))
    lines = ["Ich habe Hunger.", "Wo ist der Bahnhof?"]
    decode = DecodeConfig()
    hyps = translator.translate_hyps(lines, decode)
    outputs = [translator.tgt_tok.decode(h[0].tokens).lower() for h in hyps]
    assert "hungry" in outputs[0] and "station" in outputs[1]
    assert min(translator.confidence(lines, [h[0].tokens for h in hyps], decode)) > decode.warn_confidence
