"""The command line and the experiment scripts: one line per error (``--debug``: the traceback), the
model checked before any BM25 work, ``--version``, and a ``--help`` that imports no model code."""

import json
import os
import subprocess
import sys

import pytest
import torch

from pyterrier_mice import MiceModel, __version__
from pyterrier_mice import cli

from conftest import tiny_encoder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def mice_folder(tokenizer, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("cli-mice"))
    torch.manual_seed(0)
    MiceModel.from_encoder(tiny_encoder("bert", num_hidden_layers=6), tokenizer, 2, 2).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def one_line_error(argv, capsys) -> str:
    """Run the CLI; it must exit with 2 and print exactly one line to stderr, no traceback."""
    rc = cli.main(argv)
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("pyterrier-mice "), err
    return lines[0]


@pytest.fixture
def no_bm25(monkeypatch):
    """Fails the test if BM25 work starts."""
    from pyterrier_mice.evaluation import retrieval

    def refuse(*args, **kwargs):
        raise AssertionError("BM25 ran before the model was checked")

    monkeypatch.setattr(retrieval, "bm25", refuse)
    monkeypatch.setattr(retrieval, "bm25_index", refuse, raising=False)


@pytest.mark.parametrize("model", ["nothere", "runs/nothere/final", "org/nothere"])
def test_a_mistyped_model_is_one_line_before_any_bm25(model, beir_folder, tmp_path, capsys, no_bm25, monkeypatch):
    import huggingface_hub.constants as hub

    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    line = one_line_error(["rerank", model, "--dataset", beir_folder, "--out", str(tmp_path / "run.trec")], capsys)
    assert model in line and "couldn't connect" not in line and "huggingface.co" not in line, line
    line = one_line_error(["index", "build", model, "--corpus", beir_folder, "--out", str(tmp_path / "ix")], capsys)
    assert model in line, line


def test_a_bad_dataset_is_one_line(mice_folder, tmp_path, capsys):
    line = one_line_error(
        ["rerank", mice_folder, "--dataset", str(tmp_path / "nodata"), "--out", str(tmp_path / "run.trec")], capsys
    )
    assert "nodata" in line and "BEIR" in line, line


@pytest.mark.parametrize(
    "argv,said",
    [
        (["train", os.path.join(ROOT, "pyterrier_mice", "configs", "ce.yaml"), "--set", "model.nope=3"], "nope"),
        (["train", os.path.join(ROOT, "pyterrier_mice", "configs", "nothere.yaml")], "nothere.yaml"),
    ],
)
def test_a_bad_option_is_one_line(argv, said, capsys):
    assert said in one_line_error(argv, capsys)


def test_an_index_option_out_of_range_is_one_line(mice_folder, beir_folder, tmp_path, capsys):
    line = one_line_error(
        ["index", "build", mice_folder, "--corpus", beir_folder, "--out", str(tmp_path / "ix"), "--storage", "int3"],
        capsys,
    )
    assert "int3" in line, line


def test_an_unexpected_error_is_one_line_and_debug_shows_the_traceback(mice_folder, tmp_path, capsys, monkeypatch):
    from pyterrier_mice.index import store

    def broken(self, *args, **kwargs):
        raise RuntimeError("something unforeseen\nwith a second line")

    monkeypatch.setattr(store.MiceIndex, "verify", broken)
    line = one_line_error(["index", "verify", str(tmp_path)], capsys)
    assert "something unforeseen" in line and "--debug" in line, line
    with pytest.raises(RuntimeError, match="unforeseen"):
        cli.main(["--debug", "index", "verify", str(tmp_path)])


def test_version(capsys):
    with pytest.raises(SystemExit) as ex:
        cli.main(["--version"])
    assert ex.value.code == 0
    assert capsys.readouterr().out.strip() == f"pyterrier-mice {__version__}"


def test_help_imports_no_model_code():
    """``--help`` (of every command) and ``import pyterrier_mice`` load neither torch nor transformers:
    the package's names are imported when first used."""
    code = (
        "import sys, json, contextlib, io\n"
        "import pyterrier_mice\n"
        "from pyterrier_mice import cli\n"
        "for argv in (['--help'], ['train', '--help'], ['derive', '--help'], ['rerank', '--help'],\n"
        "             ['index', 'build', '--help'], ['prefetch', '--help']):\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        try:\n"
        "            cli.main(argv)\n"
        "        except SystemExit:\n"
        "            pass\n"
        "print(json.dumps(sorted(m for m in ('torch', 'transformers', 'pyterrier') if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [], out.stdout + out.stderr


def test_an_experiment_script_prints_one_line(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "experiments", "rerank.py"),
            "--dataset",
            str(tmp_path / "nodata"),
            "--work",
            str(tmp_path / "w"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert out.returncode == 2, out.stderr
    assert len(lines) == 1 and "Traceback" not in out.stderr and "nodata" in lines[0], out.stderr


def test_candidates_are_cut_by_the_run_s_scores_not_its_ranks(mice_folder, beir_folder, tmp_path):
    """A TREC run counts ranks from 1; ``--k 3`` keeps each query's 3 best by score, ties broken as
    trec_eval breaks them (docno descending), whatever the rank column says."""
    lines = []
    for qid in ("1", "2"):
        scored = [("d1", 9.0), ("d2", 8.0), ("d3", 7.0), ("d4", 7.0), ("d5", 1.0)]
        for rank, (docno, score) in enumerate(scored, 1):
            lines.append(f"{qid} Q0 {docno} {rank} {score} run\n")
    run = tmp_path / "run.trec"
    run.write_text("".join(lines))
    out = str(tmp_path / "out.trec")
    argv = ["rerank", mice_folder, "--dataset", beir_folder, "--candidates", str(run), "--k", "3", "--out", out]
    assert cli.main(argv) == 0
    got = {}
    for line in open(out):
        qid, _, docno, *_ = line.split()
        got.setdefault(qid, set()).add(docno)
    assert got == {"1": {"d1", "d2", "d4"}, "2": {"d1", "d2", "d4"}}  # 3 each; d4 > d3 by docno, as trec_eval


def test_a_run_with_a_non_finite_score_is_one_line(mice_folder, beir_folder, tmp_path, capsys):
    run = tmp_path / "run.trec"
    run.write_text("1 Q0 d1 1 nan run\n1 Q0 d2 2 1.0 run\n")
    argv = ["rerank", mice_folder, "--dataset", beir_folder, "--candidates", str(run), "--out", str(tmp_path / "o")]
    line = one_line_error(argv, capsys)
    assert "qid='1'" in line and "docno='d1'" in line and "nan" in line
