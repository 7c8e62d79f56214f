"""The Python snippets of the README and of the documentation (``pyterrier_mice/pt_docs``, in its
table of contents' order) run, in order and in one namespace (as pasted into a notebook), with local
stand-ins for the hub's models and datasets."""

import os
import re

import torch

from pyterrier_mice import MaskedCrossEncoderModel, MiceModel

from authors_mice import authors_model, save_checkpoint
from test_bi_encoder import _tiny
from authors_mice_v2 import authors_model as newer_model, save_hub_folder
from conftest import tiny_encoder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


DOCS = os.path.join(ROOT, "pyterrier_mice", "pt_docs")


def rst_snippets(path) -> list[str]:
    """The ``.. code:: python`` / ``.. code-block:: python`` blocks of an RST page, dedented."""
    import textwrap

    text = open(path, encoding="utf8").read()
    blocks = re.findall(
        r"^\.\. code(?:-block)?:: python\n(?:[ \t]+:[^\n]*\n)*\n((?:(?:[ \t]+[^\n]*)?\n)+)", text, flags=re.M
    )
    return [textwrap.dedent(b) for b in blocks]


def docs_pages() -> list[str]:
    """The documentation's pages, index first, then in its toctree's order."""
    index = open(os.path.join(DOCS, "index.rst"), encoding="utf8").read()
    toc = re.search(r"\.\. toctree::\n(?:[ \t]+:[^\n]*\n)*\n((?:[ \t]+\S+\n)+)", index).group(1).split()
    return [os.path.join(DOCS, "index.rst")] + [os.path.join(DOCS, f"{name}.rst") for name in toc]


def snippets() -> list[str]:
    text = open(os.path.join(ROOT, "README.md"), encoding="utf8").read()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S) + [s for p in docs_pages() for s in rst_snippets(p)]


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
    newer = save_hub_folder(
        newer_model(hf, tokenizer, n_contextualization_layers=2, n_interaction_layers=3),
        str(tmp_path / "newer"),
        str(tmp_path / "hf"),
        tokenizer,
    )
    bi_encoder = _tiny(tmp_path / "bi", tokenizer)
    stand_ins = {
        '"irds:beir/scifact/test"': repr(beir_folder),
        '"irds:beir/scifact/train"': repr(beir_folder),
        '"sentence-transformers/all-MiniLM-L6-v2"': repr(bi_encoder),
        '"cross-encoder/ms-marco-MiniLM-L6-v2"': repr(ce),
        '"path/to/mice"': repr(mice),
        '"runs/cranfield_mice_derived/final"': repr(mice),
        '"path/to/authors/checkpoint"': repr(authors),
        '"xpmir/Mice-P-130m"': repr(newer),
    }
    monkeypatch.chdir(tmp_path)
    namespace = {}
    found = snippets()
    assert len(found) >= 3
    for code in found:
        for hub, local in stand_ins.items():
            code = code.replace(hub, local)
        exec(compile(code, "README.md", "exec"), namespace)
    assert {"mice_indexed", "fast", "mice"} <= set(namespace)
