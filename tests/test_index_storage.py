"""The index's storage kinds: int8/int4 within their quantisation bounds, product quantisation as faiss
reconstructs it, and ``storage=`` names the storage kind."""

import glob
import os

import numpy as np
import pandas as pd
import pytest
import torch

from pyterrier_mice import MiceIndex, MiceIndexError, MiceReranker

from conftest import DOCS, QUERIES

from index_helpers import corpus, frame


@pytest.mark.parametrize("kv", [False, True])
def test_int4_storage_within_its_quantisation_bound(mice_path, tmp_path, kv):
    """int4 with an fp16 scale per group of 32 values: every stored value is within half a step
    (the group's max|x|/14, plus the scale's fp16 rounding) of the fp32 value; it takes 0.5625
    bytes per value; scores follow within the error that implies for this model."""
    fly = MiceReranker.from_pretrained(mice_path, batch_size=4)
    exact = MiceIndex(str(tmp_path / "fp32")).indexer(fly, kv=kv, storage="fp32").index(corpus())
    quant = MiceIndex(str(tmp_path / "int4")).indexer(fly, kv=kv, storage="int4").index(corpus())
    for row in range(len(DOCS)):
        x, y = exact.read(row).float(), quant.read(row).float()
        assert x.shape == y.shape and x.shape[-1] % 32 == 0
        groups = x.reshape(*x.shape[:-1], -1, 32)
        step = groups.abs().amax(dim=-1, keepdim=True) / 7
        err = (x - y).abs().reshape(groups.shape)
        assert (err <= step / 2 * (1 + 2**-9) + 1e-7).all()
    assert quant.bytes_per_token() == exact.bytes_per_token() * 0.5625 / 4
    a = fly(frame()).set_index(["qid", "docno"])["score"]
    b = MiceReranker.from_pretrained(mice_path, index=quant)(frame()).set_index(["qid", "docno"])["score"]
    np.testing.assert_allclose(b.loc[a.index], a, atol=0.15)


def test_int4_packing_round_trip():
    """Packing two 4-bit values per byte and the group scales decode back exactly on the grid."""
    from pyterrier_mice.index.storage import Int4

    kind = Int4()
    q = torch.randint(-7, 8, (5, 3, 64)).float()
    scales = torch.tensor([0.5, 2.0]).repeat(5, 3, 1)  # two groups of 32 per vector
    x = (q.reshape(5, 3, 2, 32) * scales[..., None]).reshape(5, 3, 64)
    x[..., 0], x[..., 32] = 7 * 0.5, -7 * 2.0  # each group reaches its max, so its scale is as above
    values, stored = kind.encode(x)
    assert values.shape == (5, 3, 32) and stored.shape == (5, 3, 2)
    torch.testing.assert_close(kind.decode(torch.from_numpy(values), torch.from_numpy(stored)), x, rtol=0, atol=0)
    with pytest.raises(ValueError, match="must be even"):
        kind.stored_shapes((3, 63))


@pytest.mark.parametrize("kv", [False, True])
def test_int8_storage_within_its_quantisation_bound(mice_path, tmp_path, kv):
    """int8 with a per-vector fp16 scale: every stored value is within half a quantisation step
    (max|x|/254, plus the scale's fp16 rounding) of the fp32 value; scores follow within the
    error that implies for this model."""
    fly = MiceReranker.from_pretrained(mice_path, batch_size=4)
    exact = MiceIndex(str(tmp_path / "fp32")).indexer(fly, kv=kv, storage="fp32").index(corpus())
    quant = MiceIndex(str(tmp_path / "int8")).indexer(fly, kv=kv, storage="int8").index(corpus())
    for row in range(len(DOCS)):
        x, y = exact.read(row).float(), quant.read(row).float()
        step = x.abs().amax(dim=-1, keepdim=True) / 127
        assert ((x - y).abs() <= step / 2 * (1 + 2**-10) + 1e-7).all()
    assert quant.bytes_per_token() < exact.bytes_per_token() / 3.5
    a = fly(frame()).set_index(["qid", "docno"])["score"]
    b = MiceReranker.from_pretrained(mice_path, index=quant)(frame()).set_index(["qid", "docno"])["score"]
    np.testing.assert_allclose(b.loc[a.index], a, atol=2e-2)


def _faiss_reconstruction(books, x):
    """What faiss's own ProductQuantizer makes of ``x`` ``[n, *lead, dim]`` under ``books``."""
    import faiss

    n, *lead, dim = x.shape
    flat = x.reshape(n, -1, dim)
    out = np.empty_like(flat)
    m = books.shape[1]
    for s in range(flat.shape[1]):
        pq = faiss.ProductQuantizer(dim, m, 8)
        faiss.copy_array_to_vector(books[s].ravel(), pq.centroids)
        out[:, s] = pq.decode(pq.compute_codes(np.ascontiguousarray(flat[:, s])))
    return out.reshape(x.shape)


@pytest.mark.parametrize("kind,sub", [("pq", 4), ("pq1", 8)])
@pytest.mark.parametrize("kv", [False, True])
def test_pq_storage_reads_what_faiss_reconstructs(mice_path, tmp_path, monkeypatch, kind, sub, kv):
    """A pq/pq1 index: codebooks trained (faiss) on the first tokens the build writes, one per stored
    K/V slice; every read (whole, one K/V layer, into a buffer) equals faiss's own reconstruction of
    the fp32 states under the stored codebooks; one byte per ``sub`` values, plus the codebooks;
    scores follow the fp32 index within the error that implies for this tiny model."""
    pytest.importorskip("faiss")
    from pyterrier_mice.index.codecs import ProductQuantised

    monkeypatch.setattr(ProductQuantised, "sample_tokens", 400)  # fewer than the corpus: trained on a sample
    words = ["wing", "flow", "heat", "shock"]
    docs = [
        {"docno": f"{d['docno']}-{i}", "text": d["text"] + " " + " ".join(words[: i + 1])}
        for i in range(4)
        for d in corpus()
    ]
    fly = MiceReranker.from_pretrained(mice_path, batch_size=4)
    exact = MiceIndex(str(tmp_path / "fp32")).indexer(fly, kv=kv, storage="fp32").index(docs)
    quant = MiceIndex(str(tmp_path / kind)).indexer(fly, kv=kv, storage=kind).index(docs)
    total = exact.manifest["num_tokens"]
    assert total > 400 > 256
    shape = tuple(exact.manifest["extras_shape"] or exact.manifest["state_shape"])
    slices, dim = int(np.prod(shape[:-1])), shape[-1]
    name = "extras.bin" if kv else "states.bin"
    books = np.fromfile(str(tmp_path / kind / (name + ".codebook")), dtype="<f4").reshape(slices, dim // sub, 256, sub)
    all_fp32 = np.concatenate([exact.read(r).numpy() for r in range(len(docs))])
    # the codebooks are faiss's k-means, trained on the first 400 tokens
    assert np.array_equal(books, kind_books(kind, all_fp32[:400]))
    for row in range(len(docs)):
        x = exact.read(row).numpy()
        want = _faiss_reconstruction(books, x)
        np.testing.assert_allclose(quant.read(row).numpy(), want, rtol=0, atol=1e-6)
        if kv:
            buf = np.empty((x.shape[0], *shape[1:]), dtype=np.float32)
            quant.read_into(row, 1, buf)
            np.testing.assert_allclose(buf, want[:, 1], rtol=0, atol=1e-6)
    codes = int(np.prod(shape)) // sub
    extra_states = (exact.manifest["state_shape"][-1] // sub) if kv else 0
    book_bytes = sum(os.path.getsize(p) for p in glob.glob(str(tmp_path / kind / "*.codebook")))
    assert quant.bytes_per_token() == pytest.approx(codes + extra_states + book_bytes / total)
    pairs = pd.DataFrame([{"qid": q, "query": QUERIES[q], **d} for q in ("1", "2") for d in docs])
    a = MiceReranker.from_pretrained(mice_path, index=exact)(pairs).set_index(["qid", "docno"])["score"]
    on_pq = MiceReranker.from_pretrained(mice_path, index=quant)
    b = on_pq(pairs).set_index(["qid", "docno"])["score"]
    assert on_pq.last_stats == {"encoded": 0, "from_index": len(docs)}
    np.testing.assert_allclose(b.loc[a.index], a, atol=0.3)


def kind_books(kind, sample):
    from pyterrier_mice.index.storage_kinds import get_storage

    return get_storage(kind).train(sample)


def test_pq_tiny_corpus_corrupt_codebook_and_no_faiss(mice_path, tmp_path, monkeypatch):
    """A corpus with no more tokens than centroids builds, its tokens their own centroids (stored exactly); a
    codebook changed on disk is caught when the index opens; without faiss a build says in one line what to
    install, and a built index still reads."""
    pytest.importorskip("faiss")
    import sys

    fly = MiceReranker.from_pretrained(mice_path, batch_size=4)
    small = corpus()[:3]
    exact = MiceIndex(str(tmp_path / "fp32")).indexer(fly, storage="fp32").index(small)
    quant = MiceIndex(str(tmp_path / "pq")).indexer(fly, storage="pq").index(small)
    assert quant.manifest["num_tokens"] < 256
    for row in range(3):
        np.testing.assert_allclose(quant.read(row).numpy(), exact.read(row).numpy(), rtol=0, atol=1e-7)
    book = tmp_path / "pq" / "states.bin.codebook"
    data = bytearray(book.read_bytes())
    data[100] ^= 0xFF
    book.write_bytes(bytes(data))
    with pytest.raises(MiceIndexError, match="states.bin.codebook.*do not match their checksums"):
        MiceIndex(str(tmp_path / "pq")).read(0)
    (tmp_path / "pq").rename(tmp_path / "pq-bad")
    MiceIndex(str(tmp_path / "pq")).indexer(fly, storage="pq").index(small)
    monkeypatch.setitem(sys.modules, "faiss", None)
    with pytest.raises(ImportError, match="pip install faiss-cpu"):
        MiceIndex(str(tmp_path / "pq2")).indexer(fly, storage="pq").index(small)
    got = MiceReranker.from_pretrained(mice_path, index=str(tmp_path / "pq"))(frame()).set_index(["qid", "docno"])
    assert got["score"].notna().all()


def test_pq_refuses_a_vector_size_it_cannot_cut():
    from pyterrier_mice.index.storage_kinds import get_storage

    with pytest.raises(ValueError, match="vector size 30 is not a multiple of 8; use int8 or int4"):
        get_storage("pq1").stored_shapes((2, 30))


def test_the_storage_kind_is_storage(mice_path, tmp_path):
    fly = MiceReranker.from_pretrained(mice_path, batch_size=4)
    with pytest.raises(TypeError, match="dtype"):  # a model's precision everywhere else: never an index's storage
        MiceIndex(str(tmp_path / "old")).indexer(fly, dtype="int8")
    new = MiceIndex(str(tmp_path / "new")).indexer(fly, storage="int8").index(corpus())
    assert new.manifest["storage"] == "int8"
