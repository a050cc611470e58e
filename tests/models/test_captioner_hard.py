"""Hard attention of the captioner: REINFORCE with K samples per caption and a leave-one-out baseline, against
float64 references written out by hand, the unbiasedness of the score-function estimator, the paper's
expected-context switch per caption, and learning to pick the right region on a toy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from attnkit.models import Captioner, CaptionerConfig
from attnkit.models.captioner_losses import (
    advantages,
    attention_entropy,
    hard_rewards,
    hard_weights,
    leave_one_out_baseline,
    reinforce_loss,
)

# rows of 4 captions (groups 0..3): caption 0 read 3 times, caption 1 twice, captions 2 and 3 once
GROUP = torch.tensor([0, 1, 2, 3, 0, 1, 0])
SAMPLED = torch.tensor([True, True, False, True, True, True, False])
MASK = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0], [1, 1, 1, 0, 0],
                     [1, 1, 1, 1, 1], [1, 1, 1, 1, 0]], dtype=torch.bool)  # (N=7, T=5), padding differs per row


def reference_baseline(rewards: np.ndarray) -> np.ndarray:
    """b_rt = mean of R_r't over the other rows r' of r's group that were sampled and have a real word t."""
    N, T = rewards.shape
    out = np.zeros((N, T))
    for r in range(N):
        for t in range(T):
            others = [rewards[q, t] for q in range(N)
                      if q != r and GROUP[q] == GROUP[r] and SAMPLED[q] and MASK[q, t]]
            out[r, t] = sum(others) / len(others) if others else rewards[r, t]
    return out


def test_leave_one_out_baseline_matches_float64_loops():
    torch.manual_seed(0)
    rewards = torch.randn(7, 5, dtype=torch.float64)
    got = leave_one_out_baseline(rewards, GROUP, SAMPLED, MASK)
    np.testing.assert_allclose(got.numpy(), reference_baseline(rewards.numpy()), rtol=1e-12, atol=1e-12)
    word_lp = -torch.rand(7, 5, dtype=torch.float64)
    adv = advantages(word_lp, MASK, SAMPLED, GROUP, reward="word")
    ref = (word_lp.numpy() - reference_baseline(word_lp.numpy())) * (SAMPLED[:, None] & MASK).numpy()
    np.testing.assert_allclose(adv.numpy(), ref, rtol=1e-12, atol=1e-12)
    assert not bool(adv[~SAMPLED].any()) and not bool(adv[~MASK].any())  # expected-context rows and padding: 0


def test_rewards_are_the_captions_words_log_likelihood():
    lp = -torch.rand(7, 5, dtype=torch.float64)
    L, M = lp.numpy(), MASK.numpy()
    caption = [[sum(L[r, u] for u in range(5) if M[r, u]) * M[r, t] for t in range(5)] for r in range(7)]
    to_go = [[sum(L[r, u] for u in range(t, 5) if M[r, u]) * M[r, t] for t in range(5)] for r in range(7)]
    np.testing.assert_allclose(hard_rewards(lp, MASK, "caption").numpy(), caption, atol=1e-12)
    np.testing.assert_allclose(hard_rewards(lp, MASK, "to_go").numpy(), to_go, atol=1e-12)
    np.testing.assert_allclose(hard_rewards(lp, MASK, "word").numpy(), L * M, atol=1e-12)
    with pytest.raises(ValueError, match="Expected a reward in"):
        hard_rewards(lp, MASK, "bleu")


def test_reinforce_gradient_is_the_score_function_estimator_written_out():
    """d loss / d attention logits and d loss / d word log-probs against the formula, in float64."""
    torch.manual_seed(0)
    N, T, L, lam_r, lam_e, K = 7, 5, 4, 0.8, 0.05, 3
    z = torch.randn(N, T, L, dtype=torch.float64, requires_grad=True)  # attention logits
    word_lp = torch.log(torch.rand(N, T, dtype=torch.float64) * 0.9 + 0.05).requires_grad_(True)
    s = torch.randint(0, L, (N, T))  # sampled regions
    weight = torch.where(SAMPLED, 1.0 / K, 1.0).double()
    p = torch.softmax(z, -1)
    sample_lp = torch.log_softmax(z, -1).gather(-1, s[..., None])[..., 0]
    adv = advantages(word_lp, MASK, SAMPLED, GROUP, reward="caption")
    reinforce_loss(word_lp, sample_lp, attention_entropy(p), MASK, adv, weight, SAMPLED, lam_r, lam_e).backward()
    P, W, M = p.detach().numpy(), word_lp.detach().numpy(), MASK.numpy()
    R = np.array([[sum(W[r, u] for u in range(T) if M[r, u]) * M[r, t] for t in range(T)] for r in range(N)])
    A = (R - reference_baseline(R)) * (SAMPLED[:, None] & MASK).numpy()
    n = sum(float(weight[r]) * M[r].sum() for r in range(N))
    grad_z, grad_w = np.zeros((N, T, L)), np.zeros((N, T))
    for r in range(N):
        w = float(weight[r])
        for t in range(T):
            if not M[r, t]:
                continue
            grad_w[r, t] = -w / n
            H = -sum(P[r, t, k] * np.log(P[r, t, k]) for k in range(L))
            for k in range(L):
                d_logp = (1.0 if k == s[r, t] else 0.0) - P[r, t, k]
                d_h = -P[r, t, k] * (np.log(P[r, t, k]) + H) if SAMPLED[r] else 0.0
                grad_z[r, t, k] = -w * (lam_r * A[r, t] * d_logp + lam_e * d_h) / n
    np.testing.assert_allclose(z.grad.numpy(), grad_z, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(word_lp.grad.numpy(), grad_w, rtol=1e-10, atol=1e-12)


def test_leave_one_out_estimate_is_unbiased_for_the_expected_reward():
    """Mean over many captions of -d loss / d logits = d E_p[f(s)] / d logits = p * (f - E_p f) (a 3-armed bandit)."""
    torch.manual_seed(0)
    M, K = 20000, 4  # captions, samples of each; 3 regions
    z = torch.tensor([0.3, -0.5, 0.1], dtype=torch.float64, requires_grad=True)
    f = torch.tensor([-1.0, -3.0, -0.5], dtype=torch.float64)  # reward of each region
    p = torch.softmax(z, -1)
    s = torch.multinomial(p.detach(), M * K, replacement=True)  # (M K,): K samples of each of M captions
    reward = f[s][:, None]  # (M K, 1)
    group, ones = torch.arange(M).repeat_interleave(K), torch.ones(M * K, 1, dtype=torch.bool)
    sampled = torch.ones(M * K, dtype=torch.bool)
    adv = advantages(reward, ones, sampled, group, reward="word")
    lp = torch.log_softmax(z, -1)[s][:, None]
    weight = torch.full((M * K,), 1.0 / K, dtype=torch.float64)
    loss = reinforce_loss(reward, lp, torch.zeros_like(lp), ones, adv, weight, sampled)
    (grad,) = torch.autograd.grad(-loss, z)
    P = p.detach().numpy()
    exact = P * (f.numpy() - (P * f.numpy()).sum())
    np.testing.assert_allclose(grad.numpy(), exact, atol=0.02)


C, G, W = 7, 3, 5  # toy: channels (W one-hot class words, a marker, noise), grid side (L = 9), class words


def toy_model(expected_share: float, samples: int = 4, seed: int = 0) -> Captioner:
    """A captioner whose encoder passes (B, C, G, G) features through: only attention can find the marker."""
    torch.manual_seed(seed)
    cfg = CaptionerConfig(vocab_size=4 + W, encoder="small-cnn", attention_mode="hard", image_size=32, grid=G,
                          cnn_channels=C, annotation_dim=12, embed_dim=8, hidden_dim=16, attention_dim=10,
                          dropout=0.0, max_len=3, init_state="learned", expected_share=expected_share,
                          hard_samples=samples, reinforce_weight=1.0, reinforce_warmup=0)
    model = Captioner(cfg)
    model.encoder.body = nn.Identity()
    return model


def toy_batch(B: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every region holds a random class word; the caption is the word of the one marked region."""
    cls = torch.randint(0, W, (B, G * G), generator=gen)  # (B, L)
    feats = torch.zeros(B, C, G * G)
    feats[:, :W] = nn.functional.one_hot(cls, W).transpose(1, 2).float()
    marked = torch.randint(0, G * G, (B,), generator=gen)  # (B,)
    feats[torch.arange(B), W, marked] = 1.0
    feats[:, W + 1] = torch.rand(B, G * G, generator=gen)
    tgt = torch.stack([torch.ones(B, dtype=torch.long), cls[torch.arange(B), marked] + 4, torch.full((B,), 2)], 1)
    return feats.view(B, C, G, G), tgt[:, :-1], tgt[:, 1:], marked


def test_expected_context_is_chosen_per_caption_with_its_share():
    model = toy_model(expected_share=0.5, samples=3).train()
    gen = torch.Generator().manual_seed(0)
    original, seen, B = model.mode.context, [], 6

    def recording(attn, h, state, expected_context, rows, training):
        z, lp = original(attn, h, state, expected_context, rows, training)
        assert torch.equal(z[rows], expected_context[rows])  # those captions read the expected context
        picked = (z[~rows][:, None, :] == state["a"][~rows]).all(-1)  # (n, L): the others one region's a_s
        assert bool((picked.sum(-1) >= 1).all())
        seen.append(rows.clone())
        return z, lp

    model.mode.context = recording
    shares = []
    for _ in range(150):
        seen.clear()
        f, ti, to, _ = toy_batch(B, gen)
        model(f, ti, to)
        assert len(seen) == ti.size(1) and all(torch.equal(r, seen[0]) for r in seen)  # the same rows every step
        rows = seen[0]
        assert rows.numel() == B + 2 * int((~rows[:B]).sum()) and not bool(rows[B:].any())  # K = 3 samples each
        shares.append(float(rows[:B].float().mean()))
    assert abs(np.mean(shares) - 0.5) < 0.06  # 900 captions: binomial sd ~0.017


def test_hard_attention_learns_to_pick_the_marked_region_by_reinforce_alone():
    """No expected context at all (share 0): the attention is trained only through the sampled locations."""
    model = toy_model(expected_share=0.0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(1)
    for _ in range(200):
        f, ti, to, _ = toy_batch(32, gen)
        loss = model.train()(f, ti, to).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    f, ti, to, marked = toy_batch(300, gen)
    with torch.no_grad():
        out = model.eval()(f, ti)
    # chance: 1/9 of the peaks on the marker, 1/5 of the words right. A policy may settle on "no marker seen:
    # say the word whose regions it skips" (the peak then misses on that word's scenes only), hence 0.7.
    assert float((out.alignments[:, 0].argmax(-1) == marked).float().mean()) > 0.7  # peak on the marker
    assert float((out.logits[:, 0].argmax(-1) == to[:, 0]).float().mean()) > 0.9  # its word read right


def test_reinforce_warms_up_and_the_entropy_bonus_decays_with_the_training_steps():
    for step, warmup, half_life in [(0, 40, 30), (10, 40, 30), (55, 40, 30), (90, 0, 45), (7, 20, 0)]:
        lam_r, lam_e = hard_weights(step, 0.7, 0.03, warmup, half_life)
        assert lam_r == pytest.approx(0.7 * (min(1.0, step / warmup) if warmup else 1.0), rel=1e-12)
        assert lam_e == pytest.approx(0.03 * (2.0 ** (-step / half_life) if half_life else 1.0), rel=1e-12)
    model = toy_model(expected_share=0.5).train()
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        model(*toy_batch(5, gen)[:3])
    model.eval()(*toy_batch(5, gen)[:2])  # no loss, no step
    assert int(model.hard_steps) == 3 and "hard_steps" in model.state_dict()
    with pytest.raises(ValueError, match="reinforce_warmup"):
        CaptionerConfig(vocab_size=9, reinforce_warmup=-1)
