"""Scratch cells and `Recurrent`: torch parity, the two GRU resets, gradients, BPTT by hand, padding, bad args."""
import pytest
import torch
from torch import nn
from torch.autograd import gradcheck
from torch.func import functional_call

from nmt.config import RNNConfig
from nmt.models.cells import GRUCell, LSTMCell, RNNCell, ScratchRNN, gru_cell, linear_rnn_bptt, lstm_cell, rnn_cell
from nmt.models.rnn import Recurrent

B, S, I, H = 3, 5, 4, 5
TOL = dict(atol=1e-5, rtol=1e-5)
TORCH_RNN = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
TORCH_CELL = {"rnn": nn.RNNCell, "lstm": nn.LSTMCell, "gru": nn.GRUCell}
CELL_FN = {"rnn": rnn_cell, "lstm": lstm_cell, "gru": gru_cell}


def close(a, b, **tol):
    """Tensors or (nested) tuples of tensors are equal within `tol` (default TOL)."""
    if isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b)
        for x, y in zip(a, b):
            close(x, y, **tol)
        return
    assert a.shape == b.shape
    torch.testing.assert_close(a, b, **(tol or TOL))


def initial_state(cell, layers, directions, batch=B):
    h = torch.randn(layers * directions, batch, H)                       # (L*D, B, H)
    return (h, torch.randn_like(h)) if cell == "lstm" else h


def padded_batch(lengths, seq_len=S):
    """Random inputs (B, S, I) whose padded positions hold large values, so any leak shows."""
    x = torch.randn(len(lengths), seq_len, I)
    for i, n in enumerate(lengths):
        x[i, n:] = 100.0
    return x, torch.tensor(lengths)


# --- 1. parity with torch -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("given_hx", [False, True], ids=["zero_hx", "hx"])
def test_scratch_rnn_matches_torch(cell, layers, bidirectional, given_hx):
    torch.manual_seed(0)
    ref = TORCH_RNN[cell](I, H, num_layers=layers, bidirectional=bidirectional, batch_first=True)
    mine = ScratchRNN(cell, I, H, num_layers=layers, bidirectional=bidirectional)
    mine.load_state_dict(ref.state_dict())                               # strict: parameter names match torch's
    x = torch.randn(B, S, I)
    hx = initial_state(cell, layers, 2 if bidirectional else 1) if given_hx else None
    out, state = mine(x, hx)
    ref_out, ref_state = ref(x, hx)
    assert out.shape == (B, S, H * (2 if bidirectional else 1))
    close(out, ref_out)
    close(state, ref_state)


def test_scratch_relu_rnn_matches_torch():
    torch.manual_seed(0)
    ref = nn.RNN(I, H, num_layers=2, bidirectional=True, nonlinearity="relu", batch_first=True)
    mine = ScratchRNN("rnn", I, H, num_layers=2, bidirectional=True, nonlinearity="relu")
    mine.load_state_dict(ref.state_dict())
    x = torch.randn(B, S, I)
    close(mine(x), ref(x))


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("given_hx", [False, True], ids=["zero_hx", "hx"])
@pytest.mark.parametrize("kernels", ["fused", "torch"])
def test_recurrent_scratch_matches_torch_kernels_packed(cell, layers, bidirectional, given_hx, kernels):
    """With padding, scratch (masked loop) equals torch's kernels over packed sequences (impl fused or torch),
    one shared state dict."""
    torch.manual_seed(0)
    fused = Recurrent(RNNConfig(cell=cell, impl=kernels, hidden_size=H, num_layers=layers,
                                bidirectional=bidirectional), I)
    scratch = Recurrent(RNNConfig(cell=cell, impl="scratch", hidden_size=H, num_layers=layers,
                                  bidirectional=bidirectional), I)
    assert fused.state_dict().keys() == scratch.state_dict().keys()
    scratch.load_state_dict(fused.state_dict())
    x, lengths = padded_batch([3, S, 1])
    hx = initial_state(cell, layers, 2 if bidirectional else 1) if given_hx else None
    close(scratch(x, lengths, hx), fused(x, lengths, hx))
    # and back: a scratch state dict loads into the fused module
    torch.manual_seed(1)
    other = Recurrent(RNNConfig(cell=cell, impl="scratch", hidden_size=H, num_layers=layers,
                                bidirectional=bidirectional), I)
    fused.load_state_dict(other.state_dict())
    close(other(x, lengths, hx), fused(x, lengths, hx))


def test_recurrent_shorter_than_padding():
    """All sequences shorter than the padded width: fused output is padded back to S, like scratch."""
    torch.manual_seed(0)
    fused = Recurrent(RNNConfig(cell="gru", impl="fused", hidden_size=H, bidirectional=True), I)
    scratch = Recurrent(RNNConfig(cell="gru", impl="scratch", hidden_size=H, bidirectional=True), I)
    scratch.load_state_dict(fused.state_dict())
    x, lengths = padded_batch([2, 3, 1], seq_len=S)
    out, state = scratch(x, lengths)
    ref_out, ref_state = fused(x, lengths)
    assert out.shape == ref_out.shape == (3, S, 2 * H)
    close(out, ref_out)
    close(state, ref_state)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_cell_functions_match_torch_cells(cell):
    torch.manual_seed(0)
    ref = TORCH_CELL[cell](I, H)
    x, h = torch.randn(B, I), torch.randn(B, H)
    weights = (ref.weight_ih, ref.weight_hh, ref.bias_ih, ref.bias_hh)
    with torch.no_grad():
        if cell == "lstm":
            c = torch.randn(B, H)
            close(lstm_cell(x, (h, c), *weights), ref(x, (h, c)))
        else:
            close(CELL_FN[cell](x, h, *weights), ref(x, h))


def test_relu_rnn_cell_matches_torch():
    torch.manual_seed(0)
    ref = nn.RNNCell(I, H, nonlinearity="relu")
    x, h = torch.randn(B, I), torch.randn(B, H)
    with torch.no_grad():
        close(rnn_cell(x, h, ref.weight_ih, ref.weight_hh, ref.bias_ih, ref.bias_hh, nonlinearity="relu"),
              ref(x, h))


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_cell_modules_match_torch_cells(cell):
    torch.manual_seed(0)
    ref = TORCH_CELL[cell](I, H)
    mine = {"rnn": RNNCell, "lstm": LSTMCell, "gru": GRUCell}[cell](I, H)
    mine.load_state_dict(ref.state_dict())
    x, h = torch.randn(B, I), torch.randn(B, H)
    state = (h, torch.randn(B, H)) if cell == "lstm" else h
    close(mine(x, state), ref(x, state))


# --- 2. the two GRU reset placements ------------------------------------------------------------------------------

def gru_paper(x, h, w_ih, w_hh, b_ih, b_hh):
    """Cho et al. (2014) written out gate by gate: the reset gate acts on h before the matrix product."""
    W_ir, W_iz, W_in = w_ih[:H], w_ih[H:2 * H], w_ih[2 * H:]
    W_hr, W_hz, W_hn = w_hh[:H], w_hh[H:2 * H], w_hh[2 * H:]
    b_ir, b_iz, b_in = b_ih[:H], b_ih[H:2 * H], b_ih[2 * H:]
    b_hr, b_hz, b_hn = b_hh[:H], b_hh[H:2 * H], b_hh[2 * H:]
    r = torch.sigmoid(x @ W_ir.T + b_ir + h @ W_hr.T + b_hr)
    z = torch.sigmoid(x @ W_iz.T + b_iz + h @ W_hz.T + b_hz)
    n = torch.tanh(x @ W_in.T + b_in + (r * h) @ W_hn.T + b_hn)
    return (1 - z) * n + z * h


def test_gru_reset_after_matches_torch():
    torch.manual_seed(0)
    ref = nn.GRUCell(I, H)
    mine = GRUCell(I, H, reset_after=True)
    mine.load_state_dict(ref.state_dict())
    x, h = torch.randn(B, I), torch.randn(B, H)
    close(mine(x, h), ref(x, h))


def test_gru_reset_before_is_the_paper_variant_not_torch():
    torch.manual_seed(0)
    ref = nn.GRUCell(I, H)
    with torch.no_grad():                                                # large weights and biases: r and b_hn matter
        for p in ref.parameters():
            p.uniform_(-2, 2)
    mine = GRUCell(I, H, reset_after=False)
    mine.load_state_dict(ref.state_dict())
    x, h = torch.randn(B, I), torch.randn(B, H)
    with torch.no_grad():
        out = mine(x, h)
        assert (out - ref(x, h)).abs().max() > 1e-2                      # a real difference, not rounding
        close(out, gru_paper(x, h, ref.weight_ih, ref.weight_hh, ref.bias_ih, ref.bias_hh))


def test_scratch_rnn_reset_before_unrolls_the_paper_cell():
    torch.manual_seed(0)
    mine = ScratchRNN("gru", I, H, reset_after=False)
    with torch.no_grad():
        for p in mine.parameters():
            p.uniform_(-2, 2)
    ref = nn.GRU(I, H, batch_first=True)
    ref.load_state_dict(mine.state_dict())
    x = torch.randn(B, S, I)
    weights = (mine.weight_ih_l0, mine.weight_hh_l0, mine.bias_ih_l0, mine.bias_hh_l0)
    with torch.no_grad():
        out, state = mine(x)
        h, expected = torch.zeros(B, H), []
        for t in range(S):
            h = gru_paper(x[:, t], h, *weights)
            expected.append(h)
        close(out, torch.stack(expected, dim=1))
        close(state, h[None])
        assert (out - ref(x)[0]).abs().max() > 1e-2


# --- 3. gradcheck on the cell modules -----------------------------------------------------------------------------

CELL_MODULES = {
    "rnn_tanh": lambda: RNNCell(I, H),
    "rnn_relu": lambda: RNNCell(I, H, nonlinearity="relu"),
    "lstm": lambda: LSTMCell(I, H),
    "gru_reset_after": lambda: GRUCell(I, H, reset_after=True),
    "gru_reset_before": lambda: GRUCell(I, H, reset_after=False),
}


@pytest.mark.parametrize("name", list(CELL_MODULES))
def test_cell_gradcheck(name):
    """Gradients with respect to input, state and every parameter equal finite differences (float64)."""
    torch.manual_seed(0)
    cell = CELL_MODULES[name]().double()
    names = [n for n, _ in cell.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in cell.parameters()]
    x = torch.randn(2, I, dtype=torch.float64, requires_grad=True)
    h = torch.randn(2, H, dtype=torch.float64, requires_grad=True)

    if name == "lstm":
        c = torch.randn(2, H, dtype=torch.float64, requires_grad=True)

        def f(x, h, c, *ps):
            return functional_call(cell, dict(zip(names, ps)), (x, (h, c)))
        inputs = (x, h, c, *params)
    else:
        def f(x, h, *ps):
            return functional_call(cell, dict(zip(names, ps)), (x, h))
        inputs = (x, h, *params)
    assert gradcheck(f, inputs, eps=1e-6, atol=1e-6)


# --- 4. BPTT by hand ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("with_a0", [False, True], ids=["a0_zero", "a0_given"])
def test_linear_rnn_bptt_equals_autograd(with_a0):
    torch.manual_seed(0)
    T, Hs, Is, Os = 6, 4, 3, 2
    f64 = dict(dtype=torch.float64)
    W_aa = (0.5 * torch.randn(Hs, Hs, **f64)).requires_grad_()
    W_ax = torch.randn(Hs, Is, **f64).requires_grad_()
    W_ya = torch.randn(Os, Hs, **f64).requires_grad_()
    xs, targets = torch.randn(T, Is, **f64), torch.randn(T, Os, **f64)
    a0 = torch.randn(Hs, **f64) if with_a0 else None

    a, states, loss = (torch.zeros(Hs, **f64) if a0 is None else a0), [], 0.0
    for t in range(T):
        a = W_aa @ a + W_ax @ xs[t]
        a.retain_grad()
        states.append(a)
        loss = loss + 0.5 * ((W_ya @ a - targets[t]) ** 2).sum()
    loss.backward()

    with torch.no_grad():
        grads = linear_rnn_bptt(W_aa, W_ax, W_ya, xs, targets, a0)
    tol = dict(atol=1e-8, rtol=1e-8)
    close(grads["loss"], loss.detach(), **tol)
    close(grads["W_aa"], W_aa.grad, **tol)
    close(grads["W_ax"], W_ax.grad, **tol)
    close(grads["W_ya"], W_ya.grad, **tol)
    assert grads["dA"].shape == (T, Hs)
    for t in range(T):
        close(grads["dA"][t], states[t].grad, **tol)


# --- 5. padding invariance ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("impl", ["fused", "torch", "scratch"])
def test_padding_invariance(cell, impl):
    """Each sequence gives the same outputs and final states alone as inside a right-padded batch."""
    torch.manual_seed(0)
    model = Recurrent(RNNConfig(cell=cell, impl=impl, hidden_size=H, num_layers=2, bidirectional=True), I).eval()
    lengths = [4, S, 2]
    x, lens = padded_batch(lengths)
    out, state = model(x, lens)
    for i, n in enumerate(lengths):
        alone_out, alone_state = model(x[i:i + 1, :n])                   # no padding at all
        close(out[i:i + 1, :n], alone_out)
        if cell == "lstm":
            close((state[0][:, i:i + 1], state[1][:, i:i + 1]), alone_state)
        else:
            close(state[:, i:i + 1], alone_state)
        assert torch.all(out[i, n:] == 0)


# --- 6. bad arguments ---------------------------------------------------------------------------------------------

def test_unknown_cell_raises():
    with pytest.raises(ValueError, match="unknown cell 'transformer'"):
        ScratchRNN("transformer", I, H)
    for impl in ("fused", "torch", "scratch"):
        with pytest.raises(ValueError, match="unknown cell 'lstmm'"):
            Recurrent(RNNConfig(cell="lstmm", impl=impl, hidden_size=H), I)


def test_unknown_impl_raises():
    with pytest.raises(ValueError, match="unknown impl 'cudnn'"):
        Recurrent(RNNConfig(impl="cudnn", hidden_size=H), I)


def test_unknown_nonlinearity_raises():
    """A typo must not silently fall back to another activation."""
    with pytest.raises(ValueError, match="nonlinearity 'sigmoid'"):
        ScratchRNN("rnn", I, H, nonlinearity="sigmoid")
    x, h = torch.randn(B, I), torch.randn(B, H)
    cell = RNNCell(I, H, nonlinearity="Tanh")
    with pytest.raises(ValueError, match="nonlinearity 'Tanh'"):
        cell(x, h)
