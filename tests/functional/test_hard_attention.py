import torch

from attnkit.functional import hard_attention
from attnkit.functional.hard import hard_pick


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


def test_hard_pick_over_given_weights_is_hard_attention_over_their_scores():
    """hard_pick(log softmax(scores)) picks, samples and differentiates like hard_attention(scores)."""
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 2, 4), torch.randn(3, 5, 4), torch.randn(3, 5, 6)  # B=3, Tq=2, Tk=5, Dk=4, Dv=6
    log_w = torch.log_softmax(q.double() @ k.double().transpose(-2, -1) / 2.0, -1)  # (3, 2, 5), scale 1/sqrt(4)
    ctx, idx, logp = hard_pick(log_w, v.double())
    ref = hard_attention(q, k, v)
    assert torch.equal(idx, ref.index) and torch.equal(ctx.float(), ref.context)
    torch.testing.assert_close(logp.float(), ref.log_prob, atol=1e-6, rtol=1e-5)
    gen_a, gen_b = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    sampled = hard_pick(log_w, v.double(), training=True, generator=gen_a).index
    assert torch.equal(sampled, hard_attention(q, k, v, training=True, generator=gen_b).index)
    z = torch.randn(2, 1, 7, dtype=torch.float64, requires_grad=True)  # d log p(s) / d z = onehot(s) - softmax(z)
    _, s, lp = hard_pick(torch.log_softmax(z, -1), torch.randn(2, 7, 3, dtype=torch.float64), training=True)
    lp.sum().backward()
    onehot = torch.nn.functional.one_hot(s, 7).double()
    torch.testing.assert_close(z.grad, onehot - torch.softmax(z, -1).detach())
