"""The copy-memory task (nmt/copytask.py): a symbol remembered over T steps by each cell."""
import torch


def test_copy_task_batches_hide_the_symbol_at_the_start():
    from nmt.copytask import CopyConfig, make_batch
    config = CopyConfig(length=7, symbols=4, batch=32)
    x, y = make_batch(config, torch.Generator().manual_seed(0))
    assert x.shape == (32, 7) and torch.equal(x[:, 0], y + 1)
    assert bool((x[:, 1:] > 4).all())                        # noise never looks like a symbol


def test_copy_task_short_distance_is_learned():
    from nmt.copytask import CopyConfig, train_and_score
    result = train_and_score(CopyConfig(cell="gru", length=4, steps=150, hidden=32))
    assert result["accuracy"] > 0.9 > result["chance"]
