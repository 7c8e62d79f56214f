"""Bad input gets one clear error naming the argument, file or folder, and what to do."""

import os

import pytest
import torch

from pyterrier_mice import (
    ColBERTModel,
    ColBERTReranker,
    CrossEncoderReranker,
    MaskedCrossEncoderModel,
    MiceIndex,
    MiceModel,
    MiceReranker,
    PreTTRReranker,
)

from conftest import tiny_encoder


@pytest.fixture(scope="module")
def folders(tokenizer, tmp_path_factory):
    root = tmp_path_factory.mktemp("kinds")
    out = {}

    def save(name, model, with_tokenizer=True):
        out[name] = str(root / name)
        model.save_pretrained(out[name])
        if with_tokenizer:
            tokenizer.save_pretrained(out[name])

    save("hf", tiny_encoder("bert", num_hidden_layers=6))
    save("masked", MaskedCrossEncoderModel.from_encoder(tiny_encoder("bert", num_hidden_layers=6), tokenizer, "mask1"))
    save("mice", MiceModel.from_encoder(tiny_encoder("bert", num_hidden_layers=6), tokenizer, 2, 2))
    save("mice_no_tok", MiceModel.from_encoder(tiny_encoder("bert", num_hidden_layers=6), tokenizer, 2, 2), False)
    save("colbert", ColBERTModel.from_encoder(tiny_encoder("bert"), tokenizer))
    return out


def test_nonexistent_path(tmp_path):
    missing = str(tmp_path / "runs" / "nothing" / "best")
    for load in (MiceReranker.from_pretrained, CrossEncoderReranker.from_pretrained, ColBERTReranker.from_pretrained):
        with pytest.raises(FileNotFoundError, match="does not exist"):
            load(missing)


@pytest.mark.parametrize(
    "loader,folder,expected",
    [
        (MiceReranker, "hf", "plain Hugging Face 'bert' model.*MiceModel.from_backbone"),
        (PreTTRReranker, "hf", "plain Hugging Face 'bert' model.*PreTTRModel.from_backbone"),
        (MiceReranker, "masked", "masked\\) cross-encoder.*CrossEncoderReranker.*MiceModel.from_backbone"),
        (MiceReranker, "colbert", "holds a ColBERT model.*ColBERTReranker"),
        (ColBERTReranker, "mice", "holds a MICE model.*MiceReranker"),
        (CrossEncoderReranker, "mice", "holds a MICE model, not a cross-encoder.*MiceReranker"),
    ],
)
def test_wrong_kind_of_checkpoint(folders, loader, folder, expected):
    with pytest.raises(ValueError, match=expected) as err:
        loader.from_pretrained(folders[folder])
    assert folders[folder] in str(err.value)


def test_model_saved_without_tokenizer(folders):
    with pytest.raises(FileNotFoundError, match="no tokenizer files.*tokenizer.save_pretrained"):
        MiceReranker.from_pretrained(folders["mice_no_tok"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda(folders):
    with pytest.raises(ValueError, match="device='cuda', but CUDA is not available.*device='cpu'"):
        MiceReranker.from_pretrained(folders["mice"], device="cuda")


def test_index_given_as_a_path(folders, tmp_path):
    rr = MiceReranker.from_pretrained(folders["mice"])
    MiceIndex(str(tmp_path / "idx")).indexer(rr).index([{"docno": "a", "text": "wing"}])
    again = MiceReranker.from_pretrained(folders["mice"], index=str(tmp_path / "idx"))
    assert isinstance(again.index, MiceIndex) and len(again.index) == 1


@pytest.mark.parametrize("policy", ["mask3-99", "prettr-99", "mask3-7"])
def test_policy_deeper_than_the_model(folders, policy):
    with pytest.raises(ValueError, match="the model has 6 layers"):
        CrossEncoderReranker.from_pretrained(folders["hf"], policy)


def test_policy_that_never_lets_the_document_reach_cls_warns(folders):
    with pytest.warns(UserWarning, match="every document of a query gets the same score"):
        CrossEncoderReranker.from_pretrained(folders["hf"], "mask3-6")


@pytest.mark.parametrize("kwargs", [{"query_max_length": 1}, {"doc_max_length": 2}, {"doc_max_length": 129}])
def test_mice_lengths_out_of_range(folders, kwargs):
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=f"{name}=.* out of range.*from 3 to 128"):
        MiceReranker.from_pretrained(folders["mice"], **kwargs)


@pytest.mark.parametrize("max_length", [2, 999])
def test_cross_encoder_length_out_of_range(folders, max_length):
    with pytest.raises(ValueError, match=f"max_length={max_length} is out of range.*from 5 to 128"):
        CrossEncoderReranker.from_pretrained(folders["hf"], max_length=max_length)


def test_a_base_encoder_as_a_reranker_is_refused(tokenizer, tmp_path):
    from transformers import AutoModel

    base = AutoModel.from_config(tiny_encoder("bert").config)  # no classification head
    base.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="no classification head.*a randomly initialised head would score it"):
        CrossEncoderReranker.from_pretrained(str(tmp_path))


def test_an_unreachable_hub_id_is_one_line_saying_what_was_tried(tmp_path, monkeypatch):
    """An id that is no local folder, not in the hub cache, and unreachable on the hub (offline, or no
    network) fails at once, in one line naming what was tried; the hub is asked once, not retried."""
    import huggingface_hub
    import huggingface_hub.constants as hub
    import requests

    from pyterrier_mice import CrossEncoderReranker, MiceReranker

    asked = []

    def unreachable(self, repo_id, **kwargs):
        asked.append(repo_id)
        raise requests.ConnectionError("no route to host")

    def no_download(*args, **kwargs):
        raise AssertionError("a download was attempted (retried) after the hub was found unreachable")

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", unreachable)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_download)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", no_download)
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    for offline, said in ((False, "could not be reached"), (True, "HF_HUB_OFFLINE")):
        monkeypatch.setattr(hub, "HF_HUB_OFFLINE", offline)
        for cls in (MiceReranker, CrossEncoderReranker):
            with pytest.raises(OSError) as err:
                cls.from_pretrained("org/unknown-model")
            message = str(err.value)
            assert len(message.splitlines()) == 1, message
            assert "org/unknown-model" in message and "local folder" in message and "cache" in message
            assert said in message, message
    assert set(asked) == {"org/unknown-model"}


def test_an_id_the_hub_does_not_have_is_one_line(monkeypatch, tmp_path):
    import huggingface_hub
    import huggingface_hub.constants as hub
    from huggingface_hub.errors import RepositoryNotFoundError

    from pyterrier_mice import MiceReranker

    class Missing(RepositoryNotFoundError):
        def __init__(self):
            Exception.__init__(self, "404 Repository Not Found")

    def missing(self, repo_id, **kwargs):
        raise Missing()

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", missing)
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="'org/nothing' is no local folder, and the hub has no such repository"):
        MiceReranker.from_pretrained("org/nothing")


def _limited(limit_bytes):
    """preexec_fn: files of the child process may not grow past ``limit_bytes`` (writes then fail with
    EFBIG, as on a full disk), and the signal that would kill it for that is ignored."""

    def apply():
        import resource
        import signal

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return apply


def _cli(args, limit=None):
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
    return subprocess.run(
        [sys.executable, "-m", "pyterrier_mice.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        preexec_fn=_limited(limit) if limit else None,
        timeout=600,
    )


def test_a_full_disk_during_an_index_build_leaves_the_previous_index(tokenizer, beir_folder, tmp_path):
    import glob

    from pyterrier_mice import MiceIndex, MiceModel

    model = str(tmp_path / "mice")
    torch.manual_seed(0)
    MiceModel.from_encoder(tiny_encoder("bert", num_hidden_layers=4), tokenizer, 2, 2).save_pretrained(model)
    tokenizer.save_pretrained(model)
    out = str(tmp_path / "idx")
    args = ["index", "build", model, "--corpus", beir_folder, "--out", out, "--storage", "fp32", "--overwrite"]
    assert _cli(args).returncode == 0
    built = MiceIndex(out).verify().bytes_per_token()
    full = _cli(args, limit=8 * 1024)
    err = full.stderr.strip().splitlines()
    assert full.returncode == 2 and len(err) == 1 and "no space" in err[0] and out in err[0], full.stderr[-2000:]
    assert MiceIndex(out).verify().bytes_per_token() == built  # the previous index, whole and loadable
    assert not glob.glob(out + ".building*")


def test_a_full_disk_during_a_checkpoint_save_leaves_the_previous_checkpoint(tokenizer, beir_folder, tmp_path):
    import json

    import yaml

    backbone = tmp_path / "bb"
    tiny_encoder("bert", num_hidden_layers=4).save_pretrained(backbone)
    tokenizer.save_pretrained(backbone)
    cfg = {
        "output_dir": str(tmp_path / "out"),
        "steps": 1,
        "batch_size": 2,
        "warmup": 0,
        "lr": 1e-4,
        "loss": "infonce",
        "device": "cpu",
        "log_every": 0,
        "save_every": 1,
        "keep_checkpoint": True,
        "model": {"type": "mice", "backbone": str(backbone), "first_interaction_layer": 2, "interaction_layers": 2},
        "data": {"kind": "beir", "path": beir_folder, "split": "test", "bm25_k": 5},
        "eval": {"every": 0},
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert _cli(["train", str(path)]).returncode == 0
    full = _cli(["train", str(path), "--set", "steps=3", "--resume-anyway"], limit=32 * 1024)
    err = full.stderr.strip().splitlines()
    assert full.returncode == 2 and "no space" in err[-1] and "checkpoint" in err[-1], full.stderr[-2000:]
    assert len([line for line in err if "error" in line]) == 1
    with open(tmp_path / "out" / "checkpoint" / "trainer.json") as f:
        assert json.load(f)["step"] == 1  # the previous checkpoint, whole
    again = _cli(["train", str(path), "--set", "steps=3", "--resume-anyway"])
    assert again.returncode == 0, again.stderr[-2000:]
    with open(tmp_path / "out" / "checkpoint" / "trainer.json") as f:
        assert json.load(f)["step"] == 3


def _one_query_folder(tmp_path, beir_folder, empty_texts=False):
    """A copy of the test folder with one judged query in its train split (or every text empty)."""
    import json
    import shutil

    folder = tmp_path / "one"
    shutil.copytree(beir_folder, folder)
    (folder / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n1\td1\t1\n")
    if empty_texts:
        docs = [json.loads(line) for line in open(folder / "corpus.jsonl")]
        (folder / "corpus.jsonl").write_text("".join(json.dumps({**d, "title": "", "text": ""}) + "\n" for d in docs))
    return str(folder)


def _train_argv(tmp_path, folder, tokenizer, **eval_):
    import yaml

    backbone = tmp_path / "bb"
    if not backbone.exists():
        tiny_encoder("bert").save_pretrained(backbone)
        tokenizer.save_pretrained(backbone)
    cfg = {
        "output_dir": str(tmp_path / "out"),
        "steps": 1,
        "batch_size": 1,
        "warmup": 0,
        "loss": "infonce",
        "device": "cpu",
        "log_every": 0,
        "model": {"type": "cross-encoder", "backbone": str(backbone)},
        "data": {"kind": "beir", "path": folder, "split": "train", "bm25_k": 3},
        "eval": {"every": 1, "k": 3, **eval_},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    return ["train", str(tmp_path / "c.yaml")]


def test_a_hold_out_that_leaves_no_training_query_names_the_hold_out(tokenizer, beir_folder, tmp_path, capsys):
    from pyterrier_mice.cli import main

    folder = _one_query_folder(tmp_path, beir_folder)
    argv = _train_argv(tmp_path, folder, tokenizer, split="holdout", holdout=0.2)
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "eval.holdout=0.2 holds out all 1 judged query of data.split 'train'" in err and len(err.splitlines()) == 1


def test_a_collection_whose_texts_are_all_empty_is_one_line(tokenizer, beir_folder, tmp_path):
    """PISA aborts the whole process on it (exit 134, no message): refused before it runs."""
    folder = _one_query_folder(tmp_path, beir_folder, empty_texts=True)
    out = _cli(_train_argv(tmp_path, folder, tokenizer, split="train"))
    err = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(err) == 1, out.stderr[-2000:]
    assert "all 12 documents have an empty text" in err[0]


def test_a_run_killed_while_removing_its_checkpoint_is_seen_as_finished(tokenizer, tmp_path, monkeypatch):
    """The resumable checkpoint is removed at the end of a run; a kill half-way through that removal
    leaves a run that reruns as finished (the audit: FileNotFoundError for checkpoint/pytorch_model.bin)."""
    import shutil

    from training_helpers import _cfg, _groups, _reranker
    from pyterrier_mice.training import Trainer

    cfg = _cfg(tmp_path, "cross-encoder")
    rmtree = shutil.rmtree

    def killed_half_way(path, *args, **kwargs):
        finished = os.path.exists(os.path.join(os.path.dirname(path), "trainer.json"))  # written before the removal
        if finished and os.path.isdir(path) and "checkpoint" in os.path.basename(path):
            victim = next(f for f in sorted(os.listdir(path)) if f.endswith((".bin", ".safetensors")))
            os.remove(os.path.join(path, victim))  # one file gone, then the kill
            raise KeyboardInterrupt("killed")
        return rmtree(path, *args, **kwargs)

    monkeypatch.setattr(shutil, "rmtree", killed_half_way)
    with pytest.raises(KeyboardInterrupt):
        Trainer(cfg, _reranker(cfg, tokenizer), _groups()).train()
    monkeypatch.setattr(shutil, "rmtree", rmtree)
    again = Trainer(cfg, _reranker(cfg, tokenizer), _groups()).train()
    assert again["step"] == cfg.steps


def test_a_precision_the_device_cannot_honour_is_one_line(tokenizer, tmp_path):
    from pyterrier_mice import MaskedCrossEncoderModel

    MaskedCrossEncoderModel.from_encoder(tiny_encoder("bert"), tokenizer).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="precision='fp16' runs on CUDA; on the CPU use 'bf16'"):
        CrossEncoderReranker.from_pretrained(str(tmp_path), device="cpu", precision="fp16")
    with pytest.raises(ValueError, match="precision='int4'; expected one of"):
        CrossEncoderReranker.from_pretrained(str(tmp_path), device="cpu", precision="int4")


def test_a_split_written_into_the_dataset_name_says_the_split_argument(tmp_path):
    from pyterrier_mice import open_dataset

    with pytest.raises(FileNotFoundError, match=r"open_dataset\('cranfield', split='train'\)") as err:
        open_dataset("cranfield/train")
    assert len(str(err.value).splitlines()) == 1
    with pytest.raises(FileNotFoundError, match="use a BEIR-layout folder or irds:"):
        open_dataset(str(tmp_path / "nothing" / "here"))
