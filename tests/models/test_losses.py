"""The fused label-smoothed cross-entropy (nmt/losses.py) against torch's, values and gradients."""
import pytest
import torch
import torch.nn.functional as F

from nmt.losses import smoothed_cross_entropy

F64 = dict(dtype=torch.float64)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_smoothed_cross_entropy_equals_torch(smoothing):
    torch.manual_seed(0)
    logits = (3 * torch.randn(150, 37, **F64)).requires_grad_()                # 150 rows: 2 full slices + 22
    gold = torch.randint(0, 37, (150,))
    loss, nll = smoothed_cross_entropy(logits, gold, smoothing)
    (grad,) = torch.autograd.grad(2 * loss, logits)
    expected = F.cross_entropy(logits, gold, reduction="sum", label_smoothing=smoothing)
    (expected_grad,) = torch.autograd.grad(2 * expected, logits)
    assert torch.allclose(loss, expected) and torch.allclose(grad, expected_grad)
    assert torch.allclose(nll, F.cross_entropy(logits, gold, reduction="none"))
