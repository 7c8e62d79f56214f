"""Every Python code block of the README and of the documentation (``pyterrier_mice/pt_docs``, in its
table of contents' order) runs exactly as printed, in order and in one namespace (as pasted into a
notebook). What the blocks name is provided from outside their text, never by editing it: a local hub
cache holding small models under the hub ids they name (``HF_HUB_OFFLINE``), small models at the
folders they name (``path/to/mice``, …) in the working directory, and a small BEIR folder for the
``irds:`` datasets they open. A block whose first line is ``# needs the hub`` is not run."""

import os
import re
import shutil

import pytest
import torch

from pyterrier_mice import MaskedCrossEncoderModel, MiceModel

from authors_mice import authors_model, save_checkpoint
from test_bi_encoder import _tiny
from authors_mice_v2 import authors_model as newer_model, save_hub_folder
from conftest import tiny_encoder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "pyterrier_mice", "pt_docs")
NEEDS_THE_HUB = "# needs the hub"


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


def readme_snippets() -> list[str]:
    return re.findall(r"```python\n(.*?)```", open(os.path.join(ROOT, "README.md"), encoding="utf8").read(), flags=re.S)


def snippets() -> list[tuple[str, str]]:
    """(where, code) of every Python block: the README's, then each page's."""
    return [("README.md", s) for s in readme_snippets()] + [
        (os.path.basename(p), s) for p in docs_pages() for s in rst_snippets(p)
    ]


def _hub_repo(cache, repo_id: str, folder: str) -> None:
    """``folder`` as the cached snapshot of ``repo_id`` in the hub cache ``cache``."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    shutil.copytree(folder, repo / "snapshots" / ("a" * 40))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)


@pytest.fixture
def stand_ins(beir_folder, tokenizer, tmp_path, monkeypatch):
    """The models and datasets the blocks name, provided from outside their text."""
    import huggingface_hub.constants as hub

    from pyterrier_mice.evaluation import experiment

    models = tmp_path / "models"
    ce = str(models / "ce")
    MaskedCrossEncoderModel.from_encoder(tiny_encoder("bert", num_hidden_layers=6), tokenizer).save_pretrained(ce)
    tokenizer.save_pretrained(ce)
    hf = tiny_encoder("bert", num_hidden_layers=6)
    hf.save_pretrained(models / "hf")
    tokenizer.save_pretrained(models / "hf")
    newer = save_hub_folder(
        newer_model(hf, tokenizer, n_contextualization_layers=2, n_interaction_layers=3),
        str(models / "newer"),
        str(models / "hf"),
        tokenizer,
    )
    cache = tmp_path / "hub"  # the hub ids the blocks name, offline
    _hub_repo(cache, "cross-encoder/ms-marco-MiniLM-L6-v2", ce)
    _hub_repo(cache, "sentence-transformers/all-MiniLM-L6-v2", _tiny(models / "bi", tokenizer))
    _hub_repo(cache, "xpmir/Mice-P-130m", newer)
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)
    work = tmp_path / "work"  # the folders the blocks name, in the working directory
    torch.manual_seed(0)
    for folder in ("path/to/mice", "runs/cranfield_mice_derived/final"):
        MiceModel.from_backbone(ce, 3, 3).save_pretrained(work / folder)
        tokenizer.save_pretrained(work / folder)
    save_checkpoint(authors_model(hf, 2, 5), str(work / "path/to/authors/checkpoint"), str(models / "hf"), 2, 5)
    real = experiment.open_dataset  # the irds: datasets the blocks open: a small BEIR folder

    def open_dataset(spec, split="test"):
        return real(beir_folder if str(spec).startswith("irds:") else spec, split)

    monkeypatch.setattr(experiment, "open_dataset", open_dataset)
    import pyterrier_mice

    monkeypatch.setattr(pyterrier_mice, "open_dataset", open_dataset, raising=False)
    monkeypatch.chdir(work)


def test_every_python_block_runs_as_printed(stand_ins):
    namespace, ran = {}, 0
    found = snippets()
    assert len(found) >= 8
    for where, code in found:
        if code.lstrip().startswith(NEEDS_THE_HUB):
            continue
        exec(compile(code, where, "exec"), namespace)
        ran += 1
    assert ran >= 8 and {"mice", "fused", "from_index"} <= set(namespace)


def test_the_readme_and_the_docs_show_one_notebook_snippet():
    """The README's notebook snippet is the documentation's (one text, not two drifting copies)."""
    readme = readme_snippets()[0].strip()
    index = rst_snippets(os.path.join(DOCS, "index.rst"))[0].strip()
    assert readme == index
