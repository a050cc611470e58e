"""Resume: N steps, stop, resume to 2N == 2N steps in one go, bit for bit (the issue's requirement)."""

from __future__ import annotations

import pytest
import torch

from attnkit.training import TrainConfig, Trainer
from tests.training.tiny import TinyStream, tiny_model

N = 10  # crosses an epoch boundary of the 7-batch stream, and a log/eval boundary that is not a multiple


def _config(out, steps, **kw):
    base = dict(steps=steps, lr=3e-2, schedule="cosine", warmup_steps=3, clip_norm=0.5, eval_every=4,
                log_every=3, seed=7, out_dir=str(out), progress=False, device="cpu", restore_best=False,
                metric="eval_loss", mode="min")
    base.update(kw)
    return TrainConfig(**base)


def _evaluate(model):
    torch.rand(5)  # an evaluation that draws random numbers must not change the training trajectory
    x = torch.arange(11).view(1, 11)
    logits = model(x)
    return {"eval_loss": float(torch.nn.functional.cross_entropy(logits[0], (x[0] + 1) % 11))}


@pytest.mark.parametrize("schedule", ["cosine", "constant"])
def test_resume_matches_uninterrupted_run(tmp_path, schedule):
    # one run of 2N steps
    full = tiny_model(seed=1)
    Trainer(full, _config(tmp_path / "full", 2 * N, schedule=schedule), TinyStream(seed=3), evaluate=_evaluate).fit()

    # N steps, stop; then a fresh process-like start (other init, fresh stream) resumed to 2N.
    # cosine: the first run is planned for 2N and interrupted at N (the schedule spans the planned steps);
    # constant: the first run is simply asked for N steps, the second for 2N.
    first = tiny_model(seed=1)
    if schedule == "cosine":
        r1 = Trainer(first, _config(tmp_path / "split", 2 * N, schedule=schedule), TinyStream(seed=3),
                     evaluate=_evaluate).fit(stop_at=N)
        assert r1.stop_reason == "stop_at"
    else:
        r1 = Trainer(first, _config(tmp_path / "split", N, schedule=schedule), TinyStream(seed=3),
                     evaluate=_evaluate).fit()
    assert r1.steps == N
    at_n = {k: v.clone() for k, v in first.state_dict().items()}

    second = tiny_model(seed=99)
    stream = TinyStream(seed=3)
    r2 = Trainer(second, _config(tmp_path / "split", 2 * N, schedule=schedule, resume=True), stream,
                 evaluate=_evaluate).fit()
    assert r2.resumed_from == N and r2.steps == 2 * N
    # the resumed stream started where the first run stopped: epoch 1, index N - 7
    assert stream.served[0] == (1, N - 7)

    full_state, resumed_state = full.state_dict(), second.state_dict()
    assert full_state.keys() == resumed_state.keys()
    for name in full_state:
        assert torch.equal(full_state[name], resumed_state[name]), name
    # and training did move the weights after step N (the comparison is not vacuous)
    assert not torch.equal(at_n["hidden.weight"], resumed_state["hidden.weight"])


def test_resume_without_checkpoint_starts_fresh(tmp_path):
    a, b = tiny_model(seed=1), tiny_model(seed=1)
    ra = Trainer(a, _config(tmp_path / "a", 5, resume=True), TinyStream(seed=3)).fit()
    Trainer(b, _config(tmp_path / "b", 5), TinyStream(seed=3)).fit()
    assert ra.resumed_from is None
    for name, t in a.state_dict().items():
        assert torch.equal(t, b.state_dict()[name]), name


def test_resume_restores_optimizer_and_scheduler(tmp_path):
    model = tiny_model(seed=1)
    trainer = Trainer(model, _config(tmp_path, N), TinyStream(seed=3))
    trainer.fit()
    from attnkit.training import load_checkpoint

    ckpt = load_checkpoint(tmp_path / "checkpoint")
    assert ckpt.step == N
    assert ckpt.state["scheduler"]["last_epoch"] == N
    # AdamW counted N steps for every parameter
    steps = {float(s["step"]) for s in ckpt.optimizer["state"].values()}
    assert steps == {float(N)}
    assert ckpt.data_state == {"epoch": 1, "index": N - 7}


def test_resuming_with_another_global_batch_names_the_rule(tmp_path):
    """Under torchrun the stream's batch is --batch-size x processes; a resume must keep that product."""
    from attnkit.data.batches import BatchStream, EncodedPairs
    from attnkit.errors import CheckpointError
    from attnkit.models import Seq2Seq
    from attnkit.models.seq2seq import Seq2SeqConfig

    pairs = EncodedPairs([[1, 4 + i % 5, 2] for i in range(9)], [[1, 5 + i % 3, 2] for i in range(9)])

    def trainer(batch_size):
        torch.manual_seed(0)
        model = Seq2Seq(Seq2SeqConfig(src_vocab_size=10, tgt_vocab_size=10, embed_dim=4, hidden_dim=4,
                                      attention_dim=4))
        return Trainer(model, _config(tmp_path, 4), BatchStream(pairs, batch_size=batch_size, seed=1))

    trainer(4).fit(stop_at=2)  # e.g. 2 processes x 2
    with pytest.raises(CheckpointError, match=r"batch_size differs.*resume with the same product \(e.g. 1 x 32"):
        trainer(2).fit(resume=True)  # e.g. 1 process x 2
    assert trainer(4).fit(resume=True).steps == 4  # 1 process x 4: the same batches
