"""The encoder-decoder (models/seq2seq.py): shapes, padding invariance, fused == scratch, teacher forcing ==
step by step, overfitting, checkpoint round trips, tied embeddings, the decoding input table."""
import pytest
import torch

from nmt import checkpoint as ckpt_io
from nmt.config import RNNConfig, Seq2SeqConfig, from_dict, to_dict
from nmt.data import make_seq2seq_batch
from nmt.decoding import beam_search
from nmt.models.seq2seq import Seq2Seq
from nmt.tasks.translate import smoothed_loss

V = 23


def tiny(attention="bahdanau", cell="gru", impl="fused", input_feeding=False, layers=1, **kw):
    enc = RNNConfig(cell=cell, impl=impl, hidden_size=8, num_layers=layers, bidirectional=True)
    config = Seq2SeqConfig(src_vocab_size=V, tgt_vocab_size=V, embed_size=8, encoder=enc, decoder_hidden=16,
                           decoder_layers=layers, attention=attention, input_feeding=input_feeding, dropout=0.0,
                           emb_dropout=0.0, **kw)
    torch.manual_seed(0)
    return Seq2Seq(config).eval()


VARIANTS = [dict(attention=a, cell=c, input_feeding=f) for a in ("bahdanau", "general", "dot")
            for c in ("gru", "lstm") for f in (False, True)]


@pytest.mark.parametrize("kw", VARIANTS, ids=lambda kw: "-".join(str(v) for v in kw.values()))
def test_shapes(kw):
    model = tiny(**kw)
    src = torch.randint(4, V, (3, 7))
    lengths = torch.tensor([7, 5, 2])
    tgt = torch.randint(4, V, (3, 4))
    assert model(src, lengths, tgt).shape == (3, 4, V)
    enc, state = model.encode(src, lengths)
    logits, state, att = model.decode(enc, tgt[:, :1], state)
    assert logits.shape == (3, 1, V) and att.shape == (3, 1, 7)
    assert torch.allclose(att.sum(-1), torch.ones(3, 1))
    assert torch.all(att[1, :, 5:] == 0) and torch.all(att[2, :, 2:] == 0)   # no attention on padding


@pytest.mark.parametrize("feeding", [False, True])
def test_selected_logits_equal_the_full_logits_at_those_positions(feeding):
    """Training projects only real target positions to the vocabulary; the rows must be the same logits."""
    model = tiny(input_feeding=feeding)
    src, lengths = torch.randint(4, V, (3, 6)), torch.tensor([6, 4, 2])
    tgt = torch.randint(4, V, (3, 5))
    select = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.bool)
    full = model(src, lengths, tgt)
    picked = model(src, lengths, tgt, select=select)
    assert picked.shape == (9, V) and torch.allclose(picked, full[select], atol=1e-6)
    gold = tgt.masked_fill(~select, 0)
    assert torch.allclose(smoothed_loss(picked, gold, 0.1)[0], smoothed_loss(full, gold, 0.1)[0], atol=1e-6)


@pytest.mark.parametrize("kw", VARIANTS[:4], ids=lambda kw: "-".join(str(v) for v in kw.values()))
def test_padding_invariance(kw):
    model = tiny(**kw)
    short = torch.tensor([[5, 6, 7]])
    alone = model(short, torch.tensor([3]), torch.tensor([[1, 9, 10]]))
    batch_src = torch.tensor([[5, 6, 7, 0, 0], [8, 9, 10, 11, 12]])
    batched = model(batch_src, torch.tensor([3, 5]), torch.tensor([[1, 9, 10, 0], [1, 4, 4, 4]]))
    assert torch.allclose(alone[0], batched[0, :3], atol=1e-5)


def test_teacher_forcing_equals_step_by_step():
    """The parallel (one fused call over T) decoder equals running it one step at a time."""
    model = tiny()
    src, lengths = torch.randint(4, V, (2, 6)), torch.tensor([6, 4])
    tgt = torch.randint(4, V, (2, 5))
    full = model(src, lengths, tgt)
    enc, state = model.encode(src, lengths)
    steps = []
    for t in range(5):
        logits, state, _ = model.decode(enc, tgt[:, t:t + 1], state)
        steps.append(logits)
    assert torch.allclose(full, torch.cat(steps, 1), atol=1e-5)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("other", ["torch", "scratch"])
@pytest.mark.parametrize("feeding", [False, True])
def test_fused_equals_other_impls(cell, other, feeding):
    """One state dict, three implementations, the same logits (training mode without dropout, and eval)."""
    fused, model = tiny(cell=cell, input_feeding=feeding), tiny(cell=cell, impl=other, input_feeding=feeding)
    model.load_state_dict(fused.state_dict())
    src, lengths, tgt = torch.randint(4, V, (3, 6)), torch.tensor([6, 3, 1]), torch.randint(4, V, (3, 4))
    assert torch.allclose(fused(src, lengths, tgt), model(src, lengths, tgt), atol=1e-5)
    fused.train(), model.train()
    assert torch.allclose(fused(src, lengths, tgt), model(src, lengths, tgt), atol=1e-5)


def test_overfits_tiny_batch():
    """A reversal task on four sentences is learned to near-zero loss and decoded exactly."""
    torch.manual_seed(1)
    pairs = [([5, 6, 7, 8], [8, 7, 6, 5]), ([9, 10, 11], [11, 10, 9]), ([12, 5, 9], [9, 5, 12]),
             ([4, 13, 14, 15, 16], [16, 15, 14, 13, 4])]
    batch = make_seq2seq_batch(pairs, range(4))
    model = tiny(attention="general").train()
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    for _ in range(150):
        loss, _ = smoothed_loss(model(batch.src, batch.src_lengths, batch.tgt_in), batch.tgt_out, 0.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05
    out = beam_search(model.eval(), batch.src, batch.src_lengths, 1, 2, beam=3)
    assert [h[0].tokens for h in out] == [t for _, t in pairs]


def test_checkpoint_round_trip_same_outputs(tmp_path):
    model = tiny()
    path = tmp_path / "m.pt"
    ckpt_io.save(path, ckpt_io.Checkpoint("translate", {"model": to_dict(model.config)}, model.state_dict()))
    loaded = ckpt_io.load(path, task="translate")
    again = Seq2Seq(from_dict(Seq2SeqConfig, loaded.config["model"])).eval()
    again.load_state_dict(loaded.model)
    src, lengths = torch.randint(4, V, (2, 5)), torch.tensor([5, 3])
    assert [h[0].tokens for h in beam_search(model, src, lengths, 1, 2)] == \
           [h[0].tokens for h in beam_search(again, src, lengths, 1, 2)]


def test_tied_embeddings_share_storage():
    model = tiny()
    assert model.output.weight is model.tgt_embed.weight is model.src_embed.weight
    with pytest.raises(ValueError, match="joint"):
        Seq2Seq(Seq2SeqConfig(src_vocab_size=10, tgt_vocab_size=12, tie_src_tgt=True))


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_input_feeding_loop_matches_torch_module(cell):
    """The hand-written input-feeding loop equals stepping torch's own (fused) RNN module."""
    model = tiny(cell=cell, input_feeding=True, layers=2)
    src, lengths, tgt = torch.randint(4, V, (3, 6)), torch.tensor([6, 4, 2]), torch.randint(4, V, (3, 5))
    enc, state = model.encode(src, lengths)
    logits, _, _ = model.decode(enc, tgt, state)
    rnn_state, feed = state[0], torch.zeros(3, 1, 8)
    emb, vectors = model.tgt_embed(tgt), []
    for t in range(5):
        out, rnn_state = model.decoder(torch.cat([emb[:, t:t + 1], feed], -1), hx=rnn_state)
        feed, _ = model._attend(out, enc)
        vectors.append(feed)
    assert torch.allclose(logits, model.output(torch.cat(vectors, 1)), atol=1e-5)


@pytest.mark.parametrize("kw", [dict(cell="gru"), dict(cell="lstm"), dict(cell="gru", input_feeding=True),
                                dict(cell="gru", layers=2)], ids=str)
def test_decoding_input_table_matches_the_embedding_product_and_follows_weight_updates(kw):
    model = tiny(**kw)
    src, lengths = torch.randint(4, V, (3, 6)), torch.tensor([6, 4, 2])
    y = torch.randint(4, V, (3, 1))

    def step(grad: bool):
        with torch.set_grad_enabled(grad):
            enc, state = model.encode(src, lengths)
            return model.decode(enc, y, state)[0]

    assert torch.allclose(step(False), step(True), atol=1e-6)        # the table (no autograd) against the product
    assert model._inputs_table is not None
    with torch.no_grad():
        model.decoder.rnn.weight_ih_l0.add_(0.5)                      # an in-place update, as an optimizer makes
    assert torch.allclose(step(False), step(True), atol=1e-6)
