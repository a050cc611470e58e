"""The model-to-picture records live on the application floor: one explicit table covering every model attnkit can
load, and ``attnkit.viz`` imports no model (checked in a fresh interpreter, so nothing else imported them first)."""

from __future__ import annotations

import subprocess
import sys

import pytest

import attnkit.models
from attnkit.errors import InputError
from attnkit.recipes.records import RECORDS, Adapter, record_for
from attnkit.storage import MODEL_REGISTRY


def test_every_model_attnkit_loads_has_a_record():
    own = {name for name, cls in MODEL_REGISTRY.items() if cls.__module__.startswith("attnkit.models.")}
    loadable = own | {attnkit.models.Bert.model_type, attnkit.models.GPT.model_type}  # + Hugging Face's layout
    assert set(RECORDS) == loadable
    assert RECORDS["captioner"].image == "required" and not RECORDS["seq2seq"].grad


def test_viz_imports_no_model_and_no_record():
    code = ("import sys, attnkit.viz, attnkit.viz.report, attnkit.viz.explorer; "
            "print(sorted(m for m in sys.modules if m.startswith(('attnkit.models', 'attnkit.recipes'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_an_unknown_model_and_a_bad_adapter_are_refused():
    class Other:
        model_type = "other"

    with pytest.raises(InputError, match="attnkit viz does not know model_type 'other'. Expected one of"):
        record_for(Other(), "text")
    with pytest.raises(ValueError, match="Expected image 'never' or 'required'. Received: 'maybe'"):
        Adapter(lambda *a: None, image="maybe")


def test_classifier_gradients_are_those_of_its_top_logit():
    import torch

    from attnkit.data import Tokenizer
    from attnkit.models.classifier import AttentionClassifier, ClassifierConfig

    torch.manual_seed(4)
    tok = Tokenizer.train(["ana va al cine", "una nueva casa"], scheme="word")
    model = AttentionClassifier(ClassifierConfig(labels=("a", "b", "c"), vocab_size=tok.vocab_size, embed_dim=6,
                                                 d_model=8, ff_dim=5, kernel_size=3, self_attention="dot")).eval()
    model.tokenizers = {"text": tok}
    rec = record_for(model, "ana va al cine", grad=True)
    out = model(torch.tensor([tok.encode("ana va al cine", add_special=False)]), output_attentions=True)
    (expected,) = torch.autograd.grad(out.logits[0].max(), out.attentions, allow_unused=True)  # the reference
    expected = torch.zeros_like(out.attentions[0]) if expected is None else expected  # weights off the graph: 0
    assert len(rec.gradients) == 1
    torch.testing.assert_close(rec.gradients[0], expected[0])
