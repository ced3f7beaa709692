"""The tagger (models/tagger.py, models/crf.py): the CRF against brute force, padding invariance, character
features of distinct words, casing classes, and the IOB2 constraints."""
import itertools

import pytest
import torch

from nmt.config import RNNConfig, TaggerConfig
from nmt.models.crf import CRF, iob2_constraints
from nmt.models.tagger import CASINGS, Tagger, casing
from nmt.tasks.tag import Encoded, make_batch

TAGS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]


# --- CRF against brute force ----------------------------------------------------------------------------------

def random_crf(k: int, seed: int, constraints=None) -> CRF:
    gen = torch.Generator().manual_seed(seed)
    crf = CRF(k, constraints)
    with torch.no_grad():
        crf.start.copy_(torch.randn(k, generator=gen))
        crf.end.copy_(torch.randn(k, generator=gen))
        crf.trans.copy_(torch.randn(k, k, generator=gen))
    return crf


def path_score(crf: CRF, em: torch.Tensor, path) -> float:
    """The CRF score of one tag path over unpadded emissions em (S, K), in float64."""
    start, trans = (t.detach().double() for t in crf._scores())
    end, em = crf.end.detach().double(), em.double()
    total = start[path[0]] + end[path[-1]] + sum(em[i, t] for i, t in enumerate(path))
    return float(total + sum(trans[a, b] for a, b in zip(path, path[1:])))


def brute_force(crf: CRF, em: torch.Tensor):
    """(log Z, best path) over every path of an unpadded sentence em (S, K)."""
    scores = {p: path_score(crf, em, p) for p in itertools.product(range(em.size(1)), repeat=em.size(0))}
    log_z = float(torch.logsumexp(torch.tensor(list(scores.values()), dtype=torch.float64), 0))
    return log_z, list(max(scores, key=scores.get))


@pytest.mark.parametrize("length", [1, 2, 3, 4])
def test_crf_matches_brute_force(length):
    crf = random_crf(3, seed=length)
    gen = torch.Generator().manual_seed(100 + length)
    for _ in range(3):
        em = torch.randn(1, length, 3, generator=gen) * 2
        mask = torch.ones(1, length, dtype=torch.bool)
        log_z, best = brute_force(crf, em[0])
        assert crf.log_partition(em, mask).item() == pytest.approx(log_z, abs=1e-5)
        assert crf.decode(em, mask)[0].tolist() == best
        tags = torch.randint(0, 3, (1, length), generator=gen)
        gold = path_score(crf, em[0], tags[0].tolist())
        assert crf.score(em, tags, mask).item() == pytest.approx(gold, abs=1e-5)
        assert crf.nll(em, tags, mask).item() == pytest.approx(log_z - gold, abs=1e-5)


def test_crf_batch_of_different_lengths_matches_each_sentence():
    crf = random_crf(3, seed=7)
    gen = torch.Generator().manual_seed(8)
    lengths = torch.tensor([4, 2, 3, 1])
    mask = torch.arange(4)[None, :] < lengths[:, None]                   # (B, S)
    em = torch.randn(4, 4, 3, generator=gen)
    em = torch.where(mask[:, :, None], em, torch.full_like(em, 50.0))    # padding would dominate if it leaked in
    tags = torch.randint(0, 3, (4, 4), generator=gen)                    # padded tags are arbitrary too
    log_z, decoded = crf.log_partition(em, mask), crf.decode(em, mask)
    nll = crf.nll(em, tags, mask)
    for b, n in enumerate(lengths.tolist()):
        ref_z, ref_best = brute_force(crf, em[b, :n])
        assert log_z[b].item() == pytest.approx(ref_z, abs=1e-5)
        assert decoded[b, :n].tolist() == ref_best and decoded[b, n:].eq(0).all()
        ref_nll = ref_z - path_score(crf, em[b, :n], tags[b, :n].tolist())
        assert nll[b].item() == pytest.approx(ref_nll, abs=1e-5)


def test_crf_nll_is_padding_invariant_and_positive():
    crf = random_crf(5, seed=3)
    gen = torch.Generator().manual_seed(4)
    short, long_ = torch.randn(1, 3, 5, generator=gen), torch.randn(1, 6, 5, generator=gen)
    tags_short, tags_long = torch.randint(0, 5, (1, 3), generator=gen), torch.randint(0, 5, (1, 6), generator=gen)
    alone = crf.nll(short, tags_short, torch.ones(1, 3, dtype=torch.bool))
    em = torch.cat([torch.cat([short, torch.randn(1, 3, 5, generator=gen)], 1), long_])      # (2, 6, 5)
    tags = torch.cat([torch.cat([tags_short, torch.full((1, 3), 4)], 1), tags_long])
    mask = torch.tensor([[1] * 3 + [0] * 3, [1] * 6], dtype=torch.bool)
    batched = crf.nll(em, tags, mask)
    assert batched[0].item() == pytest.approx(alone.item(), abs=1e-5)
    assert (batched > 0).all()                          # -log p of one path among many


# --- the tagger model -----------------------------------------------------------------------------------------

def tiny_config(char_features="cnn", output="crf", **kw) -> TaggerConfig:
    rnn = RNNConfig(cell="lstm", hidden_size=8, bidirectional=True)
    return TaggerConfig(word_vocab_size=20, char_vocab_size=15, num_tags=len(TAGS), word_embed=8, char_embed=4,
                        char_features=char_features, char_hidden=4, casing_embed=3, rnn=rnn, dropout=0.0,
                        word_dropout=0.0, output=output, **kw)


def item(n: int, seed: int) -> Encoded:
    gen = torch.Generator().manual_seed(seed)
    words = torch.randint(1, 20, (n,), generator=gen).tolist()
    chars = [torch.randint(1, 15, (int(torch.randint(1, 7, (1,), generator=gen)),), generator=gen).tolist()
             for _ in range(n)]
    return Encoded(words, chars, torch.randint(1, len(CASINGS), (n,), generator=gen).tolist(),
                   torch.randint(0, len(TAGS), (n,), generator=gen).tolist())


@pytest.mark.parametrize("char_features", ["cnn", "lstm", "none"])
def test_tagger_emissions_and_loss_are_padding_invariant(char_features):
    torch.manual_seed(0)
    model = Tagger(tiny_config(char_features), TAGS).eval()
    items = [item(3, 1), item(7, 2)]
    alone, both = make_batch(items, [0]), make_batch(items, [0, 1])
    assert both.chars.size(1) >= alone.chars.size(1) and both.words.shape == (2, 7)
    assert both.char_index.shape == (2, 7) and torch.all(both.char_index[0, 3:] == 0)   # padding: the empty word
    em_alone = model(alone.words, alone.chars, alone.casings, alone.lengths, alone.char_index)
    em_both = model(both.words, both.chars, both.casings, both.lengths, both.char_index)
    assert em_alone.shape == (1, 3, len(TAGS)) and em_both.shape == (2, 7, len(TAGS))
    assert torch.allclose(em_alone[0], em_both[0, :3], atol=1e-5)
    nll_alone = model.crf.nll(em_alone, alone.tags, alone.mask)
    nll_both = model.crf.nll(em_both, both.tags, both.mask)
    assert nll_alone[0].item() == pytest.approx(nll_both[0].item(), abs=1e-4)
    assert torch.equal(model.decode(em_alone, alone.mask)[0], model.decode(em_both, both.mask)[0, :3])


@pytest.mark.parametrize("char_features", ["cnn", "lstm"])
def test_distinct_word_features_equal_per_position_features(char_features):
    """The batch convolves each distinct word once; the result equals computing every position's word."""
    torch.manual_seed(0)
    model = Tagger(tiny_config(char_features), TAGS).eval()
    items = [item(5, 3), item(4, 3), item(6, 4)]          # the same seed twice: repeated words across sentences
    batch = make_batch(items, [0, 1, 2])
    assert batch.chars.size(0) < 1 + 15                    # fewer distinct words than positions
    per_position = batch.chars[batch.char_index]           # (B, S, W)
    fast = model(batch.words, batch.chars, batch.casings, batch.lengths, batch.char_index)
    slow = model(batch.words, per_position, batch.casings, batch.lengths)
    assert torch.allclose(fast, slow, atol=1e-5)


def test_casing_classes():
    assert [casing(w) for w in ("1996", "1996-08-30", "london", "EU", "London", "-3", "-")] == [1, 2, 3, 4, 5, 6, 7]
    assert all(0 < casing(w) < len(CASINGS) for w in ("x", "X", "3", "Ünïcode", "漢字", "'s"))


# --- IOB2 constraints -------------------------------------------------------------------------------------------

def may_follow(prev: str, tag: str) -> bool:
    return not tag.startswith("I-") or (prev[:2] in ("B-", "I-") and prev[2:] == tag[2:])


def valid_iob2(tags: list[str]) -> bool:
    return all(may_follow(prev, tag) for prev, tag in zip(["O"] + tags, tags))     # "O" before: no I- first


def test_iob2_constraints_table():
    start, allowed = iob2_constraints(TAGS)
    assert start.tolist() == [True, True, False, True, False]
    for i, prev in enumerate(TAGS):
        for j, tag in enumerate(TAGS):
            assert allowed[i, j].item() == may_follow(prev, tag), (prev, tag)


def test_constrained_decode_never_breaks_iob2():
    crf = random_crf(len(TAGS), seed=1, constraints=iob2_constraints(TAGS))
    idx = {t: i for i, t in enumerate(TAGS)}
    # emissions shouting for an invalid sequence: I- first, I-PER after O, I-LOC after B-PER, I-PER after I-LOC
    wanted = ["I-PER", "O", "I-PER", "B-PER", "I-LOC", "I-PER"]
    em = torch.zeros(1, len(wanted), len(TAGS))
    for i, tag in enumerate(wanted):
        em[0, i, idx[tag]] = 100.0
    mask = torch.ones(1, len(wanted), dtype=torch.bool)
    best = [TAGS[t] for t in crf.decode(em, mask)[0].tolist()]
    assert valid_iob2(best), best
    unconstrained = random_crf(len(TAGS), seed=1)
    assert [TAGS[t] for t in unconstrained.decode(em, mask)[0].tolist()] == wanted
    # many random strong emissions, padded batch
    gen = torch.Generator().manual_seed(2)
    em = torch.randn(64, 9, len(TAGS), generator=gen) * 30
    lengths = torch.randint(1, 10, (64,), generator=gen)
    mask = torch.arange(9)[None, :] < lengths[:, None]
    for row, n in zip(crf.decode(em, mask).tolist(), lengths.tolist()):
        assert valid_iob2([TAGS[t] for t in row[:n]])


def test_constrained_nll_stays_finite():
    crf = random_crf(len(TAGS), seed=5, constraints=iob2_constraints(TAGS))
    em = (torch.randn(2, 4, len(TAGS), generator=torch.Generator().manual_seed(6)) * 10).requires_grad_()
    idx = {t: i for i, t in enumerate(TAGS)}
    gold = torch.tensor([[idx[t] for t in ("B-PER", "I-PER", "O", "B-LOC")],
                         [idx[t] for t in ("O", "I-PER", "I-LOC", "O")]])     # the second breaks IOB2
    nll = crf.nll(em, gold, torch.ones(2, 4, dtype=torch.bool))
    assert torch.isfinite(nll).all() and nll[0] > 0 and nll[1] > nll[0]
    nll.sum().backward()
    assert torch.isfinite(em.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in crf.parameters())


@pytest.mark.parametrize("width", [3, 5])
def test_char_cnn_over_words_end_to_end_equals_the_padded_grid(width):
    """Inference lays the words end to end (CharCNN.packed); training convolves the padded grid. Same values,
    for words of every length, an empty word included."""
    from nmt.models.tagger import CharCNN
    torch.manual_seed(0)
    cnn = CharCNN(30, 8, 12, width).eval()
    lengths = torch.tensor([1, 4, 0, 9, 2, 9, 3])
    chars = torch.randint(1, 30, (7, 9)) * (torch.arange(9) < lengths[:, None])
    with torch.no_grad():
        packed, padded = cnn(chars), cnn.padded(chars)
    assert packed.shape == (7, 12) and (packed[2] == 0).all()
    assert torch.allclose(packed, padded, atol=1e-6)
