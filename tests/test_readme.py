"""The README's Python snippets run, in order and in one namespace (as pasted into a notebook),
with local stand-ins for the hub's models and datasets."""
import os
import re

import torch

from pyterrier_mice import MaskedCrossEncoderModel, MiceModel

from authors_mice import authors_model, save_checkpoint
from authors_mice_v2 import authors_model as newer_model, save_hub_folder
from conftest import tiny_encoder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def snippets() -> list[str]:
    text = open(os.path.join(ROOT, "README.md"), encoding="utf8").read()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_python_snippets_run(beir_folder, tokenizer, tmp_path, monkeypatch):
    ce = str(tmp_path / "ce")
    MaskedCrossEncoderModel.from_encoder(tiny_encoder("bert", num_hidden_layers=6), tokenizer).save_pretrained(ce)
    tokenizer.save_pretrained(ce)
    mice = str(tmp_path / "mice")
    torch.manual_seed(0)
    MiceModel.from_backbone(ce, 3, 3).save_pretrained(mice)
    tokenizer.save_pretrained(mice)
    hf = tiny_encoder("bert", num_hidden_layers=6)
    hf.save_pretrained(tmp_path / "hf")
    tokenizer.save_pretrained(tmp_path / "hf")
    authors = save_checkpoint(authors_model(hf, 2, 5), str(tmp_path / "authors"), str(tmp_path / "hf"), 2, 5)
    newer = save_hub_folder(newer_model(hf, tokenizer, n_contextualization_layers=2, n_interaction_layers=3),
                            str(tmp_path / "newer"), str(tmp_path / "hf"), tokenizer)
    stand_ins = {'"irds:beir/scifact/test"': repr(beir_folder),
                 '"cross-encoder/ms-marco-MiniLM-L6-v2"': repr(ce),
                 '"path/to/mice"': repr(mice), '"runs/cranfield_mice_derived/final"': repr(mice),
                 '"path/to/authors/checkpoint"': repr(authors), '"xpmir/Mice-P-130m"': repr(newer)}
    monkeypatch.chdir(tmp_path)
    namespace = {}
    found = snippets()
    assert len(found) >= 3
    for code in found:
        for hub, local in stand_ins.items():
            code = code.replace(hub, local)
        exec(compile(code, "README.md", "exec"), namespace)
    assert {"mice_indexed", "fast", "mice"} <= set(namespace)
