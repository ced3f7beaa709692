"""Contextual character-LM features (nmt/models/context.py): the sentence string and its positions, the features
against the LMs run on each word's prefix and suffix, padding invariance, and that the LMs stay frozen."""
import torch

from nmt.config import TaggerConfig
from nmt.models.context import CharContext, context_ids, context_inputs, lm_config, normalise, sentence_string
from nmt.models.tagger import Tagger
from nmt.tokenizers import UNK, CharTokenizer

ALPHABET = CharTokenizer.train(["abcdefghijklmnopqrstuvwxyz #.,'\n"])


def tiny_context(seed: int = 0, bfloat16: bool = False) -> CharContext:
    torch.manual_seed(seed)
    context = CharContext(lm_config(ALPHABET.vocab_size, 8, 12, 1)).eval()
    context.bfloat16 = bfloat16
    return context


def test_normalise_lowercases_and_hides_digits():
    assert normalise("Berlin 1996-08-30 G7") == "berlin ####-##-## g#"


def test_sentence_string_marks_each_words_first_and_last_character():
    words = ["EU", "rejects", "German", "call", "1996"]
    text, starts, ends = sentence_string(words)
    assert text == "\neu rejects german call #### "
    assert [text[a:b + 1] for a, b in zip(starts, ends)] == ["eu", "rejects", "german", "call", "####"]


def test_context_ids_reads_unknown_characters_as_unk():
    ids, starts, ends = context_ids(ALPHABET, ["Zürich", "a"])
    assert ids[starts[0] + 1] == UNK and len(ids) == len("\nzürich a ")


def test_context_inputs_reverse_each_string_and_point_at_the_same_words():
    rows = [context_ids(ALPHABET, ["ab", "cde"]), context_ids(ALPHABET, ["x"])]
    fwd, bwd, fwd_at, bwd_at = context_inputs(rows)
    assert fwd.shape == bwd.shape == (2, len("\nab cde ")) and fwd_at.shape == bwd_at.shape == (2, 2)
    for row, (ids, starts, ends) in enumerate(rows):
        n = len(ids)
        assert bwd[row, :n].tolist() == ids[::-1]
        assert [fwd[row, e].item() for e in ends] == [ids[e] for e in ends]                 # last characters
        assert [bwd[row, p].item() for p in bwd_at[row, :len(starts)]] == [ids[s] for s in starts]   # first ones


def test_features_are_the_forward_lm_on_the_prefix_and_the_backward_lm_on_the_suffix():
    context = tiny_context()
    ids, starts, ends = context_ids(ALPHABET, ["the", "eu", "said", "."])
    features = context(*context_inputs([(ids, starts, ends)]))[0]                           # (S, 2H)
    run = lambda lm, part: lm.rnn(lm.embed(torch.tensor([part])))[0][0, -1]                 # noqa: E731
    for i, (a, b) in enumerate(zip(starts, ends)):
        torch.testing.assert_close(features[i, :12], run(context.forward_lm, ids[:b + 1]))
        torch.testing.assert_close(features[i, 12:], run(context.backward_lm, ids[a:][::-1]))


def test_bfloat16_features_stay_close_to_float32():
    context = tiny_context(2)
    inputs = context_inputs([context_ids(ALPHABET, ["the", "eu", "said", "on", "monday", "."])])
    exact = context(*inputs)
    context.bfloat16 = True
    approx = context(*inputs)                                   # emulated where the CPU lacks bfloat16
    assert approx.dtype == torch.float32 and (approx - exact).abs().max() < 0.02


def test_features_do_not_depend_on_the_other_sentences_of_a_batch():
    context = tiny_context(1)
    short = context_ids(ALPHABET, ["a", "cat"])
    long = context_ids(ALPHABET, ["the", "longest", "sentence", "of", "all", "."])
    alone = context(*context_inputs([short]))[0]                                            # (2, 2H)
    batched = context(*context_inputs([long, short]))[1, :2]
    torch.testing.assert_close(batched, alone)


def test_the_lms_stay_frozen_while_the_tagger_trains():
    config = TaggerConfig(word_vocab_size=10, char_vocab_size=10, num_tags=3, word_embed=6, char_embed=4,
                          char_hidden=4, casing_embed=2, context_vocab=ALPHABET.vocab_size, context_embed=8,
                          context_hidden=12)
    model = Tagger(config, ["O", "B-PER", "I-PER"]).train()
    assert not model.context.training and not any(p.requires_grad for p in model.context.parameters())
    before = {k: v.clone() for k, v in model.context.state_dict().items()}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=0.1)
    context = context_inputs([context_ids(ALPHABET, ["ann", "met", "bob"])])
    emissions = model(torch.tensor([[2, 3, 4]]), torch.tensor([[[2, 3]] * 3]), torch.tensor([[3, 3, 3]]),
                      torch.tensor([3]), context=context)                                   # (1, 3, K)
    emissions.sum().backward()
    optimizer.step()
    assert all(torch.equal(before[k], v) for k, v in model.context.state_dict().items())
