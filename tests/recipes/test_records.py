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
