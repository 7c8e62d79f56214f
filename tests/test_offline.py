"""Without a network, an ir_datasets collection that is not in the local cache (BEIR, TREC-DL) is one
line naming what was tried and the local alternative, in the API, the CLI and ``experiments/``.

Each check runs in a fresh interpreter with an empty ``IR_DATASETS_HOME`` (ir_datasets reads it at
import) and ``requests.get`` cut, so that it holds on a machine with a network or a filled cache."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHECK = r"""
import json, sys, requests
def cut(*args, **kwargs):
    raise requests.ConnectionError("network cut by the test")
requests.get = cut
requests.Session.request = cut
spec, where = sys.argv[1], sys.argv[2]
if where == "api":
    from pyterrier_mice.evaluation.experiment import open_dataset
    try:
        open_dataset(spec)
        print(json.dumps({"error": None}))
    except Exception as e:
        print(json.dumps({"error": str(e), "type": type(e).__name__}))
elif where == "corpus":
    from pyterrier_mice.evaluation.datasets import IrdsCollection
    try:
        next(iter(IrdsCollection(spec).get_corpus_iter()))
        print(json.dumps({"error": None}))
    except Exception as e:
        print(json.dumps({"error": str(e), "type": type(e).__name__}))
else:
    from pyterrier_mice import cli
    sys.exit(cli.main(sys.argv[3:]))
"""

SPECS = ["irds:msmarco-passage/trec-dl-2019/judged", "irds:beir/scifact/test"]


def run(tmp_path, *args):
    env = {
        **os.environ,
        "IR_DATASETS_HOME": str(tmp_path / "irds"),
        "HF_HUB_OFFLINE": "1",
        "PYTERRIER_MICE_CACHE": str(tmp_path / "cache"),
    }
    return subprocess.run(
        [sys.executable, "-c", CHECK, *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300
    )


def assert_says_what_to_do(message: str, spec: str):
    assert len(message.splitlines()) == 1, message
    assert spec in message, message
    assert "All download sources failed" not in message and "MaxRetryError" not in message, message
    assert "prefetch" in message and "BEIR-layout folder" in message, message


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("where", ["api", "corpus"])
def test_an_uncached_collection_offline_is_one_line(spec, where, tmp_path):
    out = run(tmp_path, spec, where)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["error"] is not None, out.stdout
    assert_says_what_to_do(result["error"], spec)


@pytest.mark.parametrize("spec", SPECS)
def test_the_cli_offline_is_one_line(spec, tmp_path):
    out = run(
        tmp_path, spec, "cli", "rerank", "cross-encoder/nothere", "--dataset", spec, "--out", str(tmp_path / "run.trec")
    )
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert out.returncode == 2 and len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    # the model is checked first: with a mistyped model, that is the line
    assert "cross-encoder/nothere" in lines[0], out.stderr


def test_the_cli_offline_names_the_dataset(tmp_path, tokenizer):
    from conftest import tiny_encoder
    from pyterrier_mice import MaskedCrossEncoderModel

    model = str(tmp_path / "ce")
    MaskedCrossEncoderModel.from_encoder(tiny_encoder("bert"), tokenizer).save_pretrained(model)
    tokenizer.save_pretrained(model)
    spec = SPECS[0]
    out = run(tmp_path, spec, "cli", "rerank", model, "--dataset", spec, "--out", str(tmp_path / "run.trec"))
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert out.returncode == 2 and len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert_says_what_to_do(lines[0].split(": error: ", 1)[1], spec)
