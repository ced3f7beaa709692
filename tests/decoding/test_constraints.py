"""Decoding constraints (nmt/decoding.py) on the pointer-generator: n-gram blocking, minimum and maximum
lengths, copied words with their attention."""
import torch

from nmt.decoding import beam_search, greedy, repeated_ngrams
from nmt.models.pointer import PointerGenerator
from nmt.tokenizers import BOS, EOS
from tests.models.test_pointer import V, source_batch, tiny_model


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
