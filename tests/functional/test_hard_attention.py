import torch

from attnkit.functional import hard_attention


def test_eval_picks_argmax_of_soft_weights():
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 4, 3), torch.randn(2, 6, 3), torch.randn(2, 6, 5)
    ctx, idx, logp = hard_attention(q, k, v)
    scores = (q.double() @ k.double().transpose(-2, -1)) / 3**0.5
    expected_idx = scores.argmax(-1)
    assert torch.equal(idx, expected_idx)
    torch.testing.assert_close(ctx, torch.stack([v[b, expected_idx[b]] for b in range(2)]))
    torch.testing.assert_close(logp.double(), torch.log_softmax(scores, -1).gather(-1, expected_idx[..., None]).squeeze(-1), atol=1e-6, rtol=1e-5)


def test_training_samples_follow_the_softmax():
    q = torch.tensor([[[1.0, 0.0]]])
    k = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]]])  # dot scores 0, 1, 2
    v = torch.eye(3)[None]
    gen = torch.Generator().manual_seed(0)
    counts = torch.zeros(3)
    n = 4000
    for _ in range(n):
        _, idx, _ = hard_attention(q, k, v, score="dot", training=True, generator=gen)
        counts[idx.item()] += 1
    expected = torch.softmax(torch.tensor([0.0, 1.0, 2.0]), 0)
    assert torch.allclose(counts / n, expected, atol=0.03)


def test_masking_and_reinforce_gradient():
    q = torch.randn(1, 2, 4, requires_grad=True)
    k, v = torch.randn(1, 5, 4), torch.randn(1, 5, 3)
    mask = torch.tensor([[[False, True, False, True, False], [False] * 5]])
    ctx, idx, logp = hard_attention(q, k, v, mask=mask, training=True)
    assert idx[0, 0].item() in (1, 3)
    assert idx[0, 1].item() == -1 and torch.all(ctx[0, 1] == 0) and logp[0, 1].item() == 0
    (-logp.sum()).backward()  # REINFORCE with reward 1
    assert torch.isfinite(q.grad).all() and q.grad.abs().sum() > 0
