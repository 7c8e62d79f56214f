"""The document-state index: same scores as on the fly, and it never gives a wrong score."""

import glob
import os
import time

import numpy as np
import pandas as pd
import pyterrier as pt
import pytest
import torch

from pyterrier_mice import MiceIndex, MiceIndexError, MiceModel, MiceReranker

from conftest import DOCS, QUERIES, tiny_encoder

from index_helpers import corpus, frame


@pytest.mark.parametrize(
    "kv,dtype,tol", [(False, "fp32", 1e-5), (False, "fp16", 5e-3), (True, "fp32", 1e-5), (True, "fp16", 5e-3)]
)
def test_index_scores_equal_on_the_fly(mice_path, tmp_path, kv, dtype, tol):
    """fp32 states reproduce on-the-fly scores to 1e-5; fp16 storage to 5e-3 (tiny model)."""
    fly = MiceReranker.from_pretrained(mice_path, batch_size=4)
    idx = MiceIndex(str(tmp_path / "idx")).indexer(fly, kv=kv, storage=dtype).index(corpus())
    assert len(idx) == len(DOCS)
    rr = MiceReranker.from_pretrained(mice_path, batch_size=4, index=idx)
    a = fly(frame()).set_index(["qid", "docno"])["score"]
    b = rr(frame()).set_index(["qid", "docno"])["score"]
    assert rr.last_stats == {"encoded": 0, "from_index": len(DOCS)}
    np.testing.assert_allclose(b.loc[a.index], a, atol=tol)


def test_artifact_load_and_fallback(mice_path, tmp_path):
    fly = MiceReranker.from_pretrained(mice_path, batch_size=4)
    MiceIndex(str(tmp_path / "idx")).indexer(fly, storage="fp32").index(corpus()[:6])
    loaded = pt.Artifact.load(str(tmp_path / "idx"))
    assert isinstance(loaded, MiceIndex)
    rr = MiceReranker.from_pretrained(mice_path, batch_size=4, index=loaded)
    inp = frame()
    inp.loc[inp["docno"] == "d2", "text"] = "a changed text about wings"  # stale in the index
    inp = pd.concat([inp, frame(("1",), ("d1",)).assign(docno="new", text="a brand new doc")])
    got = rr(inp).set_index(["qid", "docno"])["score"]
    ref = fly(inp).set_index(["qid", "docno"])["score"]
    np.testing.assert_allclose(got.loc[ref.index], ref, atol=1e-5)
    assert rr.last_stats["encoded"] == len(DOCS) - 6 + 1 + 1  # 6 missing, 1 new, 1 changed


def test_wrong_model_is_refused(mice_path, tokenizer, tmp_path):
    fly = MiceReranker.from_pretrained(mice_path)
    idx = MiceIndex(str(tmp_path / "idx")).indexer(fly).index(corpus())
    torch.manual_seed(5)
    other = MiceModel.from_encoder(tiny_encoder("bert", num_hidden_layers=6, seed=5), tokenizer, 2, 2)
    with pytest.raises(MiceIndexError, match="different model"):
        MiceReranker(other, tokenizer, index=idx)
    with pytest.raises(MiceIndexError, match="doc_max_length"):
        MiceReranker.from_pretrained(mice_path, index=idx, doc_max_length=32)


def test_interrupted_build_never_loads(mice_path, tmp_path):
    fly = MiceReranker.from_pretrained(mice_path, batch_size=2)

    def dying():
        yield from corpus()[:5]
        raise KeyboardInterrupt("killed")

    path = str(tmp_path / "idx")
    with pytest.raises(KeyboardInterrupt):
        MiceIndex(path).indexer(fly).index(dying())
    assert not os.path.exists(path) and not glob.glob(path + ".building*")  # an exception cleans up
    os.makedirs(path + ".building")  # what a SIGKILLed build leaves behind
    with pytest.raises(MiceIndexError, match="interrupted or running build"):
        MiceReranker.from_pretrained(mice_path, index=MiceIndex(path))
    MiceIndex(path).indexer(fly).index(corpus())  # the next build cleans up
    assert not glob.glob(path + ".building*") and len(MiceIndex(path)) == len(DOCS)


def test_truncated_and_corrupt_files(mice_path, tmp_path):
    fly = MiceReranker.from_pretrained(mice_path)
    path = str(tmp_path / "idx")
    MiceIndex(path).indexer(fly, kv=True).index(corpus())
    with open(os.path.join(path, "extras.bin"), "r+b") as f:
        f.truncate(os.path.getsize(os.path.join(path, "extras.bin")) - 10)
    with pytest.raises(MiceIndexError, match="truncated or corrupt"):
        MiceReranker.from_pretrained(mice_path, index=MiceIndex(path))
    MiceIndex(path).indexer(fly, overwrite=True).index(corpus())
    with open(os.path.join(path, "manifest.json"), "w") as f:
        f.write("{not json")
    with pytest.raises(MiceIndexError, match="corrupt"):
        len(MiceIndex(path))


def test_bad_corpus_input(mice_path, tmp_path):
    fly = MiceReranker.from_pretrained(mice_path)
    with pytest.raises(ValueError, match="docno 'd1' is in the corpus twice"):
        MiceIndex(str(tmp_path / "a")).indexer(fly).index(corpus() + corpus()[:1])
    with pytest.raises(KeyError, match="'text'"):
        MiceIndex(str(tmp_path / "b")).indexer(fly).index([{"docno": "x"}])
    MiceIndex(str(tmp_path / "c")).indexer(fly).index(corpus())
    with pytest.raises(FileExistsError, match="overwrite=True"):
        MiceIndex(str(tmp_path / "c")).indexer(fly).index(corpus())


def test_saved_and_reloaded_model_matches_its_index(mice_path, tmp_path):
    """The fingerprint ignores what save/load changes (paths, versions), not the weights."""
    fly = MiceReranker.from_pretrained(mice_path)
    fly.model.save_pretrained(tmp_path / "copy")
    fly.tokenizer.save_pretrained(tmp_path / "copy")
    idx = MiceIndex(str(tmp_path / "idx")).indexer(fly).index(corpus())
    MiceReranker.from_pretrained(str(tmp_path / "copy"), index=idx)


def test_index_build_reports_truncation_once(mice_path, tmp_path):
    """Truncation over a whole build is one warning, not one per batch."""
    rr = MiceReranker.from_pretrained(mice_path, batch_size=2, doc_max_length=6)
    with pytest.warns(UserWarning) as record:
        MiceIndex(str(tmp_path / "idx")).indexer(rr, storage="fp32").index(corpus())
    messages = [str(w.message) for w in record if "truncated" in str(w.message)]
    long_docs = sum(len(rr.tokenizer(d["text"], add_special_tokens=False)["input_ids"]) > 4 for d in corpus())
    assert messages == [f"MiceReranker: {long_docs} of {len(DOCS)} documents exceeded 6 tokens and were truncated"]


@pytest.fixture(scope="module")
def other_mice_path(tokenizer, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("mice_other"))
    torch.manual_seed(7)
    MiceModel.from_encoder(tiny_encoder("bert", num_hidden_layers=6, seed=7), tokenizer, 2, 2).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _worker(model, index_path, delay, wait="nowait", overwrite="keep"):
    import subprocess
    import sys

    here = os.path.dirname(__file__)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([here, os.path.dirname(here), os.environ.get("PYTHONPATH", "")]))
    return subprocess.Popen(
        [sys.executable, os.path.join(here, "index_build_worker.py"), model, index_path, str(delay), wait, overwrite],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


def _consistent(index_path, model_path, refused_path):
    """The index equals on-the-fly scores of ``model_path``'s model and refuses the other model."""
    fly = MiceReranker.from_pretrained(model_path)
    rr = MiceReranker.from_pretrained(model_path, index=MiceIndex(index_path))
    np.testing.assert_allclose(rr(frame())["score"], fly(frame())["score"], atol=1e-5)
    with pytest.raises(MiceIndexError, match="different model"):
        MiceReranker.from_pretrained(refused_path, index=MiceIndex(index_path))


def test_two_processes_building_one_path(mice_path, other_mice_path, tmp_path):
    """A second build into a path being built fails clearly (or, with wait=True, queues behind it);
    the index that results always holds the states its own manifest describes."""
    path = str(tmp_path / "idx")
    first = _worker(mice_path, path, 0.4)
    time.sleep(2.0)  # the first holds the lock by now
    second = _worker(other_mice_path, path, 0.0)
    assert "being built by another process" in second.communicate(timeout=120)[0]
    assert first.communicate(timeout=120)[0].strip() == "OK"
    _consistent(path, mice_path, other_mice_path)
    # queued behind a running rebuild, then replacing it: the last build wins, whole
    first = _worker(mice_path, path, 0.3, overwrite="overwrite")
    time.sleep(2.0)
    second = _worker(other_mice_path, path, 0.0, wait="wait", overwrite="overwrite")
    assert first.communicate(timeout=120)[0].strip() == "OK"
    assert second.communicate(timeout=120)[0].strip() == "OK"
    _consistent(path, other_mice_path, mice_path)
    assert not glob.glob(path + ".building*") and not glob.glob(path + ".old*")


def _corrupt(path, name, offset, n=64):
    """Overwrite ``n`` bytes of ``name`` in place (its size unchanged) with 0x41 (fp32 12.07)."""
    with open(os.path.join(path, name), "r+b") as f:
        f.seek(offset)
        f.write(b"A" * min(n, os.path.getsize(os.path.join(path, name)) - offset))


@pytest.mark.parametrize("kv", [False, True])
def test_same_size_corruption_is_caught(mice_path, tmp_path, kv):
    fly = MiceReranker.from_pretrained(mice_path)
    path = str(tmp_path / "idx")
    idx = MiceIndex(path).indexer(fly, kv=kv, storage="fp32").index(corpus())
    name = "extras.bin" if kv else "states.bin"
    _corrupt(path, name, os.path.getsize(os.path.join(path, name)) // 2)
    with pytest.raises(MiceIndexError, match=f"{name}: bytes .* do not match their checksums"):
        MiceIndex(path).verify()
    with pytest.raises(MiceIndexError, match="do not match their checksums"):
        len(MiceIndex(path, verify="full"))
    lazy = MiceReranker.from_pretrained(mice_path, index=MiceIndex(path))  # opening is cheap; reading checks
    with pytest.raises(MiceIndexError, match=f"{name}.*rebuild the index"):
        lazy(frame())
    # what verify prevents: a reader that trusts the disk gets wrong states, silently
    clean = MiceIndex(str(tmp_path / "clean")).indexer(fly, kv=kv, storage="fp32").index(corpus())
    trusting = MiceIndex(path, verify="none")
    diff = max(float((trusting.read(r) - clean.read(r)).abs().max()) for r in range(len(DOCS)))
    assert diff > 1.0 and idx is not None


def test_corrupt_small_files_are_caught_on_open(mice_path, tmp_path):
    fly = MiceReranker.from_pretrained(mice_path)
    path = str(tmp_path / "idx")
    MiceIndex(path).indexer(fly).index(corpus())
    _corrupt(path, "texts.npy", os.path.getsize(os.path.join(path, "texts.npy")) - 3, 1)
    with pytest.raises(MiceIndexError, match="texts.npy"):
        len(MiceIndex(path))


def test_cli_verify(mice_path, tmp_path, capsys):
    from pyterrier_mice.cli import main

    fly = MiceReranker.from_pretrained(mice_path)
    path = str(tmp_path / "idx")
    MiceIndex(path).indexer(fly).index(corpus())
    assert main(["index", "verify", path]) == 0
    assert "OK" in capsys.readouterr().out
    _corrupt(path, "states.bin", 100)
    assert main(["index", "verify", path]) == 2
    size = os.path.getsize(os.path.join(path, "states.bin"))
    assert f"states.bin: bytes 0..{size} do not match their checksums" in capsys.readouterr().err


def test_bf16_reranker_uses_an_fp32_built_index(mice_path, other_mice_path, tmp_path):
    fly = MiceReranker.from_pretrained(mice_path)
    idx = MiceIndex(str(tmp_path / "idx")).indexer(fly, storage="fp32").index(corpus())
    rr = MiceReranker.from_pretrained(mice_path, index=idx, precision="bf16")
    assert rr.last_stats == {} and np.isfinite(rr(frame())["score"]).all()
    assert rr.last_stats == {"encoded": 0, "from_index": len(DOCS)}
    with pytest.raises(MiceIndexError, match="different model") as err:  # bf16 on the CPU: fp32 weights, autocast
        MiceReranker.from_pretrained(other_mice_path, index=idx, precision="bf16")
    assert "runs in" not in str(err.value)
    other = MiceReranker.from_pretrained(other_mice_path)  # weights in bf16 themselves (as on CUDA): said
    with pytest.raises(MiceIndexError, match="different model.*built by a float32 model.*runs in bfloat16"):
        MiceReranker(other.model.to(torch.bfloat16), other.tokenizer, index=idx)


def test_indexer_inherits_the_rerankers_text_field(mice_path, tmp_path):
    rr = MiceReranker.from_pretrained(mice_path, text_field="body")
    idx = (
        MiceIndex(str(tmp_path / "idx")).indexer(rr).index([{"docno": d["docno"], "body": d["text"]} for d in corpus()])
    )
    assert len(idx) == len(DOCS)
    inp = frame().rename(columns={"text": "body"})
    assert MiceReranker.from_pretrained(mice_path, text_field="body", index=idx)(inp) is not None


def test_sharded_build_with_two_processes_equals_one(mice_path, beir_folder, tmp_path):
    """torchrun with 2 CPU processes: each writes its shard; the sharded index reads as one and gives
    the scores of a single-process build."""
    import subprocess
    import sys
    from pyterrier_mice.cli import main

    single, sharded = str(tmp_path / "single"), str(tmp_path / "sharded")
    assert main(["index", "build", mice_path, "--corpus", beir_folder, "--out", single, "--storage", "fp32"]) == 0
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_port",
            "29731",
            "-m",
            "pyterrier_mice.cli",
            "index",
            "build",
            mice_path,
            "--corpus",
            beir_folder,
            "--out",
            sharded,
            "--storage",
            "fp32",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "shard 0 of 2" in out.stdout and "shard 1 of 2" in out.stdout
    a, b = MiceIndex(single), MiceIndex(sharded).verify()
    assert len(b.manifest["shards"]) == 2 and sorted(b.docnos) == sorted(a.docnos) == sorted(DOCS)
    fly = MiceReranker.from_pretrained(mice_path)
    one = MiceReranker.from_pretrained(mice_path, index=a)(frame()).set_index(["qid", "docno"])["score"]
    two_rr = MiceReranker.from_pretrained(mice_path, index=b)
    two = two_rr(frame()).set_index(["qid", "docno"])["score"]
    assert two_rr.last_stats == {"encoded": 0, "from_index": len(DOCS)}
    np.testing.assert_allclose(two.loc[one.index], one, atol=1e-6)
    np.testing.assert_allclose(one, fly(frame()).set_index(["qid", "docno"])["score"].loc[one.index], atol=1e-5)


def test_index_only_the_documents_a_run_needs(mice_path, beir_folder, tmp_path):
    import pyterrier as pt
    from pyterrier_mice.cli import main

    run = pd.DataFrame({"qid": ["1", "1"], "docno": ["d3", "d7"], "score": [2.0, 1.0], "rank": [0, 1]})
    pt.io.write_results(run, str(tmp_path / "run.res"))
    assert (
        main(
            [
                "index",
                "build",
                mice_path,
                "--corpus",
                beir_folder,
                "--out",
                str(tmp_path / "idx"),
                "--docnos-from",
                str(tmp_path / "run.res"),
            ]
        )
        == 0
    )
    assert sorted(MiceIndex(str(tmp_path / "idx")).docnos) == ["d3", "d7"]


def test_layerwise_kv_reads_every_layer_into_one_buffer_only_outside_autograd(mice_path, tmp_path):
    """Outside autograd every interaction layer's K/V is read into one buffer, with the values (and
    zero padding) of a fresh read; with autograd on, a layer's K/V is never overwritten."""
    from pyterrier_mice.rerankers.mice import LayerwiseKV
    from pyterrier_mice.rerankers.split import StoredMemory, gather_padded, padded_buffer

    fly = MiceReranker.from_pretrained(mice_path)
    idx = MiceIndex(str(tmp_path / "idx")).indexer(fly, kv=True, storage="fp32").index(corpus())
    # documents of different lengths; one memory already in hand (a document not in the index)
    memories = [StoredMemory(idx, r, "cpu") for r in range(len(idx))] + [idx.read(0)]
    assert len({int(idx.doc_length(r)) for r in range(len(idx))}) > 1
    layers = len(fly.model.interaction)
    fresh = [gather_padded(memories, torch.float32, layer=i)[0] for i in range(layers)]
    dirty = padded_buffer(memories, layer=0)
    dirty.fill(np.nan)
    np.testing.assert_array_equal(gather_padded(memories, torch.float32, layer=1, buffer=dirty)[0], fresh[1])

    def layer_kv(grad):
        with torch.set_grad_enabled(grad):
            out = []
            for k, v in LayerwiseKV(memories, layers, fly.model.backbone.num_heads, torch.float32):
                out.append((k.data_ptr(), k.clone(), v.clone(), k))
            return out

    no_grad = layer_kv(False)
    assert len({ptr for ptr, *_ in no_grad}) == 1  # one buffer
    with_grad = layer_kv(True)
    assert len({ptr for ptr, *_ in with_grad}) == layers
    for (_, k, v, _), (_, k2, v2, kept), kv in zip(no_grad, with_grad, fresh):
        np.testing.assert_array_equal(k.transpose(1, 2).flatten(2), kv[:, :, 0])
        np.testing.assert_array_equal(v.transpose(1, 2).flatten(2), kv[:, :, 1])
        np.testing.assert_array_equal(kept, k2)  # never overwritten by a later layer


@pytest.mark.parametrize("kv", [False, True])
def test_index_reads_reuse_one_buffer_across_batches_and_calls(mice_path, tmp_path, kv):
    """Reads from the index go into one per-thread block that later batches and calls reuse; the
    scores are those of on-the-fly MICE, call after call, and the block is never pickled."""
    import pickle

    fly = MiceReranker.from_pretrained(mice_path, batch_size=2)
    idx = MiceIndex(str(tmp_path / "idx")).indexer(fly, kv=kv, storage="fp32").index(corpus())
    rr = MiceReranker.from_pretrained(mice_path, batch_size=2, index=idx)
    first = rr(frame())
    blocks = list(rr.read_buffer._blocks.values())
    assert len(blocks) == 1
    again = rr(frame(qids=("2", "3", "1")))
    assert list(rr.read_buffer._blocks.values())[0] is blocks[0]  # reused, not reallocated
    a = fly(frame()).set_index(["qid", "docno"])["score"]
    for got in (first, again):
        np.testing.assert_allclose(got.set_index(["qid", "docno"])["score"].loc[a.index], a, atol=1e-5)
    assert pickle.loads(pickle.dumps(rr.read_buffer))._blocks == {}


def test_an_index_honours_the_umask_and_says_permission_denied(mice_path, tmp_path, monkeypatch):
    """A built index is readable by whoever the umask lets read files (not only its builder: the
    temporary build folder is mode 700); a reader denied access is told so, not that the index is
    missing (simulated: the tests may run as root, whom permissions do not stop)."""
    import builtins

    fly = MiceReranker.from_pretrained(mice_path)
    path = tmp_path / "idx"
    old = os.umask(0o022)
    try:
        MiceIndex(str(path)).indexer(fly, storage="fp32").index(corpus()[:3])
    finally:
        os.umask(old)
    assert (os.stat(path).st_mode & 0o777) == 0o755
    with monkeypatch.context() as m:  # the folder cannot be listed
        m.setattr(os, "access", lambda p, mode: os.path.abspath(p) != str(path))
        with pytest.raises(MiceIndexError, match="permission denied") as err:
            MiceIndex(str(path)).verify()
        assert "no manifest" not in str(err.value)
    real_open = builtins.open

    def denied(file, *args, **kwargs):
        if str(file).endswith("manifest.json"):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", denied)
    with pytest.raises(MiceIndexError, match="permission denied.*manifest.json"):
        MiceIndex(str(path)).verify()


def test_an_index_not_used_for_changed_text_is_said_once(mice_path, tmp_path):
    """Documents the index holds under their docno but with another text are encoded (the scores stay
    right), and the re-ranker says so once, with the count and how to fix it."""
    fly = MiceReranker.from_pretrained(mice_path)
    titled = [{"docno": d, "text": f"{title} {text}"} for d, (title, text) in DOCS.items()]
    idx = MiceIndex(str(tmp_path / "idx")).indexer(fly, storage="fp32").index(titled)
    rr = MiceReranker.from_pretrained(mice_path, index=idx)
    inp = pd.DataFrame([{"qid": "1", "query": QUERIES["1"], "docno": d, "text": text} for d, (_, text) in DOCS.items()])
    with pytest.warns(UserWarning, match=rf"{len(DOCS)} of {len(DOCS)} documents .*another text.*text_field"):
        rr(inp)
    assert rr.last_stats == {"encoded": len(DOCS), "from_index": 0}
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*another text")
        rr(inp)  # said once per re-ranker


def test_a_reader_during_a_rebuild_keeps_the_scores_of_the_index_it_opened(mice_path, other_mice_path, tmp_path):
    """A process that opened an index keeps re-ranking with it while other processes rebuild the same
    path with another model (once before it scores, once while it scores): every result is the old
    index's scores, never a mix and never a spurious error; a reader opened after the rebuild is
    refused the old model."""
    import json
    import subprocess
    import sys

    path = str(tmp_path / "idx")
    fly = MiceReranker.from_pretrained(mice_path, batch_size=4)
    MiceIndex(path).indexer(fly, storage="fp32").index(corpus())
    expected = fly(frame(("1", "3"))).set_index(["qid", "docno"])["score"]
    here = os.path.dirname(__file__)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([here, os.path.dirname(here), os.environ.get("PYTHONPATH", "")]))
    reader = subprocess.Popen(
        [sys.executable, os.path.join(here, "index_read_worker.py"), mice_path, path, "8"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert reader.stdout.readline().strip() == "READY"
    assert _worker(other_mice_path, path, 0, overwrite="overwrite").communicate(timeout=300)[0].strip().endswith("OK")
    reader.stdin.write("GO\n")
    reader.stdin.flush()
    again = _worker(other_mice_path, path, 0.2, overwrite="overwrite")  # rebuilding while the reader scores
    out, _ = reader.communicate(timeout=300)
    assert again.communicate(timeout=300)[0].strip().endswith("OK")
    results = [line for line in out.splitlines() if line.strip()]
    assert results and not [r for r in results if r.startswith("ERROR")], results[:3]
    for line in results:
        got = json.loads(line)
        np.testing.assert_allclose([got[f"{q}/{d}"] for q, d in expected.index], expected.to_numpy(), atol=1e-5)
    with pytest.raises(MiceIndexError, match="different model"):
        MiceReranker.from_pretrained(mice_path, index=MiceIndex(path))


def test_the_split_rerankers_implement_the_index_s_encoder_protocol(mice_path, tokenizer, tmp_path):
    """The index reads re-rankers through ``DocumentEncoder`` only; MICE, ColBERT and split PreTTR
    implement it; a cross-encoder is refused in one line naming what it lacks."""
    from pyterrier_mice import ColBERTModel, ColBERTReranker, CrossEncoderReranker, MaskedCrossEncoderModel
    from pyterrier_mice.index import DocumentEncoder

    ColBERTModel.from_encoder(tiny_encoder("bert"), tokenizer).save_pretrained(str(tmp_path / "colbert"))
    tokenizer.save_pretrained(str(tmp_path / "colbert"))
    for rr in (MiceReranker.from_pretrained(mice_path), ColBERTReranker.from_pretrained(str(tmp_path / "colbert"))):
        assert isinstance(rr, DocumentEncoder) and rr.not_indexable is None
    MaskedCrossEncoderModel.from_encoder(tiny_encoder("bert"), tokenizer).save_pretrained(str(tmp_path / "ce"))
    tokenizer.save_pretrained(str(tmp_path / "ce"))
    with pytest.raises(TypeError, match="CrossEncoderReranker cannot build a document-state index: it lacks"):
        MiceIndex(str(tmp_path / "idx")).indexer(CrossEncoderReranker.from_pretrained(str(tmp_path / "ce")))


def test_docnos_round_trip_byte_for_byte(mice_path, tmp_path):
    """Docnos with carriage returns, other whitespace and any Unicode are stored and read back as they
    were, so every document is read from the index (the audit: a docno with \\r was split in two)."""
    fly = MiceReranker.from_pretrained(mice_path, batch_size=4)
    odd = ["a\rb", "tail\r", " lead", "tab\tin", "é😀", "x\x0by", "\r", "d1"]
    docs = [{"docno": d, "text": " ".join(t)} for d, t in zip(odd, DOCS.values())]
    index = MiceIndex(str(tmp_path / "idx")).indexer(fly).index(docs)
    assert MiceIndex(index.path).docnos == odd
    rr = MiceReranker.from_pretrained(mice_path, index=MiceIndex(index.path))
    inp = pd.DataFrame([{"qid": "1", "query": QUERIES["1"], **d} for d in docs])
    fresh = fly(inp).set_index("docno")["score"]
    got = rr(inp).set_index("docno")["score"]
    assert rr.last_stats == {"encoded": 0, "from_index": len(odd)}
    np.testing.assert_allclose(got.loc[fresh.index], fresh, atol=5e-3)


def test_indexes_that_would_never_open_are_refused_at_build(mice_path, tmp_path):
    fly = MiceReranker.from_pretrained(mice_path, batch_size=4)
    docs = corpus()
    same = [{"docno": 1, "text": "wing"}, {"docno": "1", "text": "heat"}]  # one docno once stored
    with pytest.raises(ValueError, match="docno '1' is in the corpus twice"):
        MiceIndex(str(tmp_path / "same")).indexer(fly).index(same)
    # a sharded build whose corpus gives a docno to two shards is not completed, saying so
    path = str(tmp_path / "sharded")
    assert len(docs) % 2 == 0  # docs[0] (position 0) goes to shard 0, its copy (an odd position) to shard 1
    twice = docs + [{"docno": "pad", "text": "pad"}, dict(docs[0])]
    MiceIndex(path).indexer(fly, shard=(0, 2)).index(twice)
    with pytest.raises(MiceIndexError, match=f"docno {docs[0]['docno']!r} is in shard 00000 and shard 00001"):
        MiceIndex(path).indexer(fly, shard=(1, 2)).index(twice)
    with pytest.raises(MiceIndexError, match="not a built document-state index"):
        MiceIndex(path).docnos
    # a worker given no documents says so
    with pytest.raises(MiceIndexError, match="shard 3 of 4 got no documents.*fewer workers"):
        MiceIndex(str(tmp_path / "few")).indexer(fly, shard=(3, 4)).index(docs[:3])


def test_an_index_is_a_factory_of_its_reranker(mice_path, tokenizer, tmp_path):
    """``MiceIndex(path).reranker()``: the re-ranker and model the manifest names, the index attached
    and checked; as ``PisaIndex(...).bm25()`` is. The ColBERT states' index gives ColBERT."""
    from pyterrier_mice import ColBERTModel, ColBERTReranker

    fly = MiceReranker.from_pretrained(os.path.relpath(mice_path), batch_size=4)  # a relative path, recorded whole
    path = str(tmp_path / "idx")
    MiceIndex(path).indexer(fly).index(corpus())
    rr = MiceIndex(path).reranker(batch_size=2)
    assert type(rr) is MiceReranker and rr.index.path == path and rr.batch_size == 2
    expected = fly(frame()).set_index(["qid", "docno"])["score"]
    got = rr(frame()).set_index(["qid", "docno"])["score"]
    np.testing.assert_allclose(got.loc[expected.index], expected, atol=5e-3)  # fp16 states
    assert rr.last_stats == {"encoded": 0, "from_index": len(DOCS)}
    assert type(pt.Artifact.load(path).reranker()) is MiceReranker
    other = str(tmp_path / "other")
    MiceModel.from_encoder(tiny_encoder("bert", num_hidden_layers=6, seed=9), tokenizer, 2, 2).save_pretrained(other)
    tokenizer.save_pretrained(other)
    with pytest.raises(MiceIndexError, match="different model"):
        MiceIndex(path).reranker(model=other)
    colbert = str(tmp_path / "colbert")
    ColBERTModel.from_encoder(tiny_encoder("bert"), tokenizer).save_pretrained(colbert)
    tokenizer.save_pretrained(colbert)
    MiceIndex(str(tmp_path / "cidx")).indexer(ColBERTReranker.from_pretrained(colbert)).index(corpus())
    assert type(MiceIndex(str(tmp_path / "cidx")).reranker()) is ColBERTReranker


def test_an_index_packages_and_unpackages_as_a_pyterrier_artifact(mice_path, tmp_path, monkeypatch):
    """``build_package`` / ``pt.Artifact.from_url`` (what ``to_hf`` / ``from_hf`` upload and download),
    the package served over HTTP from this machine."""
    import functools
    import http.server
    import threading

    fly = MiceReranker.from_pretrained(mice_path, batch_size=4)
    index = MiceIndex(str(tmp_path / "idx")).indexer(fly).index(corpus())
    served = tmp_path / "served"
    served.mkdir()
    index.build_package(str(served / "idx.tar.lz4"), verbose=False)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("PYTERRIER_HOME", str(tmp_path / "pt-home"))  # its artifact cache, not the user's
    try:
        loaded = pt.Artifact.from_url(f"http://127.0.0.1:{server.server_port}/idx.tar.lz4")
    finally:
        server.shutdown()
    assert isinstance(loaded, MiceIndex) and loaded.verify().docnos == index.docnos
    rr = loaded.reranker()
    expected = fly(frame()).set_index(["qid", "docno"])["score"]
    np.testing.assert_allclose(
        rr(frame()).set_index(["qid", "docno"])["score"].loc[expected.index], expected, atol=5e-3
    )


@pytest.mark.minilm
@pytest.mark.parametrize("precision", ["bf16", "int8"])
@pytest.mark.parametrize("kv", [False, True])
def test_reduced_precision_from_an_index_agrees_with_fp32(minilm_path, tmp_path_factory, precision, kv):
    """MICE from stored states or K/V, computing in bf16 (autocast) or int8 (quantised linear layers)
    on the CPU: every document read from the fp32-built index, scores close to fp32 and ranked alike
    (MICE-ℓ3+3 on MiniLM-L6's real weights with a seeded random head, whose scores spread little: int8's
    error is then a quarter of their spread; a trained model's ranking cost is in benchmarks.rst)."""
    from scipy.stats import spearmanr

    mice_path = str(tmp_path_factory.getbasetemp() / "minilm-mice")
    if not os.path.exists(os.path.join(mice_path, "config.json")):
        torch.manual_seed(0)
        MiceModel.from_backbone(minilm_path, 3, 3).save_pretrained(mice_path)
        from pyterrier_mice import load_tokenizer

        load_tokenizer(minilm_path).save_pretrained(mice_path)
    fly = MiceReranker.from_pretrained(mice_path, batch_size=4)
    idx = MiceIndex(str(tmp_path_factory.mktemp("idx"))).indexer(fly, kv=kv, storage="fp32", overwrite=True)
    idx = idx.index(corpus())
    ref = fly(frame()).set_index(["qid", "docno"])["score"]
    rr = MiceReranker.from_pretrained(mice_path, index=idx, precision=precision)
    got = rr(frame()).set_index(["qid", "docno"])["score"]
    assert rr.last_stats == {"encoded": 0, "from_index": len(DOCS)}
    spread = float(ref.max() - ref.min())
    within, correlated = {"bf16": (0.03, 0.95), "int8": (0.25, 0.8)}[precision]  # a random head: see the docstring
    np.testing.assert_allclose(got.loc[ref.index], ref, rtol=0, atol=within * spread)
    assert spearmanr(got.loc[ref.index], ref).statistic > correlated
