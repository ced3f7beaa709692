"""The character model (models/charlm.py): shapes, carried state, tied weights, weight drop, impls, and the
fast sampling stepper against the model's own forward."""
import pytest
import torch

from nmt.config import CharLMConfig, RNNConfig
from nmt.models.charlm import CharLM, CharLMEnsemble, Stepper, stepper


def tiny(cell="lstm", impl="fused", **kw):
    torch.manual_seed(0)
    rnn = RNNConfig(cell=cell, impl=impl, hidden_size=16, num_layers=2, bidirectional=False)
    return CharLM(CharLMConfig(vocab_size=30, embed_size=8, rnn=rnn, dropout=0.0, emb_dropout=0.0, **kw)).eval()


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_shapes_and_state_carry(cell):
    model = tiny(cell)
    x = torch.randint(4, 30, (3, 10))
    logits, state = model(x)
    assert logits.shape == (3, 10, 30)
    first, mid = model(x[:, :4])
    second, _ = model(x[:, 4:], mid)
    assert torch.allclose(torch.cat([first, second], 1), logits, atol=1e-5)   # chunks + carried state = whole


def test_tied_weights_with_projection():
    model = tiny(tie_weights=True)
    assert model.output.weight is model.embed.weight and model.proj is not None
    assert model(torch.randint(4, 30, (2, 5)))[0].shape == (2, 5, 30)


def test_weight_drop_only_in_training():
    model = tiny(weight_drop=0.5)
    x = torch.randint(4, 30, (2, 6))
    assert torch.equal(model(x)[0], model(x)[0])
    model.train()
    assert not torch.equal(model(x)[0], model(x)[0])


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("other", ["torch", "scratch"])
def test_fused_equals_other_impls(cell, other):
    fused, model = tiny(cell), tiny(cell, impl=other)
    model.load_state_dict(fused.state_dict())
    x = torch.randint(4, 30, (2, 7))
    assert torch.allclose(fused(x)[0], model(x)[0], atol=1e-5)
    with torch.enable_grad():                        # training mode: the GRU's hand-written BPTT path (fused)
        fused.train(), model.train()
        assert torch.allclose(fused(x)[0], model(x)[0], atol=1e-5)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("tie_weights", [False, True])
@pytest.mark.parametrize("weight_drop", [0.0, 0.3])
def test_stepper_matches_forward_from_a_carried_state(cell, tie_weights, weight_drop):
    """Sampling's fast path (embedding table, folded tied projection, raw weight-dropped matrices in eval mode)
    gives the logits of the model's own forward for one step after a prefix."""
    torch.manual_seed(0)
    rnn = RNNConfig(cell=cell, hidden_size=16, num_layers=2, bidirectional=False, dropout=0.2)
    model = CharLM(CharLMConfig(vocab_size=30, embed_size=8, rnn=rnn, dropout=0.3, emb_dropout=0.1,
                                tie_weights=tie_weights, weight_drop=weight_drop))
    if weight_drop:       # a training forward first installs a dropped copy; eval must go back to the raw weights
        model.train()(torch.randint(4, 30, (2, 3)))
    model.eval()
    x = torch.randint(4, 30, (3, 7))
    with torch.no_grad():
        _, state = model(x[:, :6])
        expected, _ = model(x[:, 6:], state)
        stepper, layers = Stepper(model), Stepper.split(state)
        got = stepper(x[:, 6], layers)
        assert torch.allclose(got, expected[:, 0], atol=1e-5)
        expected2, _ = model(x[:, :1], model(x[:, 6:], state)[1])          # the updated layers carry on too
        assert torch.allclose(stepper(x[:, 0], layers), expected2[:, 0], atol=1e-5)


def test_half_precision_stepper_stays_close_to_the_model():
    """Generation's float16 matrices: logits within a small tolerance of the float32 forward, for a few steps."""
    torch.manual_seed(0)
    model = CharLM(CharLMConfig(vocab_size=20, embed_size=8, rnn=RNNConfig(cell="lstm", hidden_size=16,
                                                                            num_layers=2, bidirectional=False))).eval()
    with torch.inference_mode():
        logits, state = model(torch.tensor([[4, 5, 6]]))
        layers = Stepper.split(state)
        stepper = Stepper(model, half=True)
        for token in (7, 8, 9):
            expected, state = model(torch.tensor([[token]]), state)
            got = stepper(torch.tensor([token]), layers)
            assert torch.allclose(got, expected[:, -1], atol=2e-2)


def test_bfloat16_training_step_gives_float32_gradients_close_to_float32():
    """train.precision=bfloat16 (nmt/precision.py) on the weight-dropped LSTM: the weights and their gradients stay
    float32, the loss and gradients land near the float32 step's (bfloat16 keeps 8 bits of mantissa)."""
    from nmt.precision import autocast
    config = CharLMConfig(vocab_size=20, embed_size=16, weight_drop=0.2, dropout=0.0, emb_dropout=0.0,
                          rnn=RNNConfig(cell="lstm", hidden_size=32, num_layers=2, dropout=0.0))
    x = torch.randint(0, 20, (4, 12), generator=torch.Generator().manual_seed(0))
    grads, losses = {}, {}
    for precision in ("float32", "bfloat16"):
        torch.manual_seed(0)                                   # same weights, same DropConnect mask
        model = CharLM(config).train()
        with autocast(torch.device("cpu"), precision):
            logits, _ = model(x)
        loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, 20), x.reshape(-1))
        loss.backward()
        losses[precision] = float(loss.detach())
        grads[precision] = torch.cat([p.grad.flatten() for p in model.parameters()])
        assert all(p.grad.dtype == torch.float32 for p in model.parameters())
    assert losses["bfloat16"] == pytest.approx(losses["float32"], abs=0.02)
    cosine = torch.nn.functional.cosine_similarity(grads["float32"], grads["bfloat16"], dim=0)
    assert cosine > 0.99


def tiny_ensemble(members: int = 2) -> CharLMEnsemble:
    torch.manual_seed(0)
    rnn = RNNConfig(cell="lstm", hidden_size=16, num_layers=2, bidirectional=False)
    return CharLMEnsemble(CharLMConfig(vocab_size=30, embed_size=8, rnn=rnn, dropout=0.0, emb_dropout=0.0,
                                       weight_drop=0.2, members=members)).eval()


def test_ensemble_predicts_the_mean_of_its_members_distributions():
    model = tiny_ensemble(3)
    x = torch.randint(4, 30, (2, 9))
    with torch.no_grad():
        logp, state = model(x)                                                   # (B, T, V)
        mean = sum(member(x)[0].softmax(-1) for member in model.members) / 3
        assert torch.allclose(logp.exp(), mean, atol=1e-6)
        assert torch.allclose(logp.exp().sum(-1), torch.ones(2, 9), atol=1e-5)
        first, mid = model(x[:, :4])                                             # chunks + carried states = whole
        second, _ = model(x[:, 4:], CharLMEnsemble.detach(mid))
        assert torch.allclose(torch.cat([first, second], 1), logp, atol=1e-5)
        assert len(state) == 3 and CharLMEnsemble.select(state, torch.tensor([1]))[2][0].shape == (2, 1, 16)
    members = {id(m.rnn.weight("weight_hh_l0")) for m in model.members}
    assert len(members) == 3 and not torch.equal(*[m.embed.weight for m in model.members[:2]])   # own weights


def test_ensemble_stepper_matches_forward_from_a_carried_state():
    model = tiny_ensemble()
    x = torch.randint(4, 30, (3, 7))
    with torch.no_grad():
        _, state = model(x[:, :6])
        expected, _ = model(x[:, 6:], state)
        step = stepper(model)
        layers = step.split(state)
        assert torch.allclose(step(x[:, 6], layers), expected[:, 0], atol=1e-5)
        expected2, _ = model(x[:, :1], model(x[:, 6:], state)[1])
        assert torch.allclose(step(x[:, 0], layers), expected2[:, 0], atol=1e-5)
    assert isinstance(stepper(model.members[0]), Stepper)
