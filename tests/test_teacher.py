"""Teacher scores: at the student's lengths, never past the teacher's own, cached and shared between processes."""

import numpy as np
import pytest

from pyterrier_mice.training import (
    TrainConfig,
)

from conftest import tiny_encoder


class _CountingTeacher:
    """A stand-in teacher: scores = text lengths; counts the pairs it scores; can die after N calls."""

    def __init__(self, die_after=None, tag="a"):
        self.scored, self.calls, self.die_after, self.tag = 0, 0, die_after, tag

    def _config_key(self):
        return ("teacher", self.tag)

    def score_pairs(self, queries, docs):
        self.calls += 1
        if self.die_after is not None and self.calls > self.die_after:
            raise KeyboardInterrupt("killed")
        self.scored += len(queries)
        return np.array([len(q) + 0.5 * len(d) for q, d in zip(queries, docs)], dtype=np.float32)


class _SlowTeacher(_CountingTeacher):
    def score_pairs(self, queries, docs):
        import time

        time.sleep(0.05)
        return super().score_pairs(queries, docs)


def test_teacher_scores_are_cached_and_resumed(tmp_path, monkeypatch):
    from pyterrier_mice.training import teacher as teacher_mod

    monkeypatch.setattr(teacher_mod, "CHUNK", 4)
    ckpt = tmp_path / "teacher"
    ckpt.mkdir()
    (ckpt / "config.json").write_text("{}")
    qs = [f"query {i}" for i in range(10)]
    ds = [f"document number {i} " * (i + 1) for i in range(10)]
    expected = np.array([len(q) + 0.5 * len(d) for q, d in zip(qs, ds)], dtype=np.float32)
    dying = _CountingTeacher(die_after=2)
    with pytest.raises(KeyboardInterrupt):
        teacher_mod.teacher_scores(dying, str(ckpt), qs, ds, str(tmp_path / "cache"), verbose=False)
    assert dying.scored == 8
    resumed = _CountingTeacher()
    np.testing.assert_array_equal(
        teacher_mod.teacher_scores(resumed, str(ckpt), qs, ds, str(tmp_path / "cache"), verbose=False), expected
    )
    assert resumed.scored == 2  # only what the killed run had not done
    again = _CountingTeacher()
    np.testing.assert_array_equal(
        teacher_mod.teacher_scores(again, str(ckpt), qs, ds, str(tmp_path / "cache"), verbose=False), expected
    )
    assert again.scored == 0  # a rerun never scores again
    other = _CountingTeacher(tag="b")  # another teacher setting, or other data: scored anew
    teacher_mod.teacher_scores(other, str(ckpt), qs, ds, str(tmp_path / "cache"), verbose=False)
    teacher_mod.teacher_scores(again, str(ckpt), qs, ds[::-1], str(tmp_path / "cache"), verbose=False)
    assert other.scored == 10 and again.scored == 10


def test_teacher_scores_at_the_students_lengths(tokenizer, beir_folder, tmp_path):
    from pyterrier_mice.training import teacher_lengths

    backbone = tmp_path / "ce"
    tiny_encoder("bert").save_pretrained(backbone)
    tokenizer.save_pretrained(backbone)
    cfg = TrainConfig.from_dict({"model": {"type": "mice", "query_max_length": 16, "doc_max_length": 64}})
    assert teacher_lengths(cfg, str(backbone)) == {"max_length": 80}
    cfg = TrainConfig.from_dict(
        {"model": {"type": "mice", "query_max_length": 16, "doc_max_length": 64}, "data": {"teacher_max_length": 100}}
    )
    assert teacher_lengths(cfg, str(backbone)) == {"max_length": 100}
    cfg = TrainConfig.from_dict({"model": {"type": "cross-encoder", "max_length": 48}})
    assert teacher_lengths(cfg, str(backbone)) == {"max_length": 48}


def test_teacher_scores_no_longer_than_it_was_trained(tokenizer, tmp_path):
    """A cross-encoder teacher trained at 48 tokens scores at 48, not at a longer student's 80: a
    trained teacher run past its training length ranks worse (on Cranfield, 25.0 nDCG@10 at 160
    tokens against 28.4 at its 128), and the student would imitate that worse teacher."""
    from pyterrier_mice import MaskedCrossEncoderModel
    from pyterrier_mice.training import teacher_lengths

    ce = tmp_path / "ce"
    model = MaskedCrossEncoderModel.from_encoder(tiny_encoder("bert"), tokenizer)
    model.config.trained_lengths = {"max_length": 48, "query_max_length": None, "doc_max_length": None}
    model.save_pretrained(ce)
    tokenizer.save_pretrained(ce)
    mice = {"type": "mice", "query_max_length": 16, "doc_max_length": 64}
    assert teacher_lengths(TrainConfig.from_dict({"model": mice}), str(ce)) == {"max_length": 48}
    assert teacher_lengths(TrainConfig.from_dict({"model": {"type": "cross-encoder", "max_length": 32}}), str(ce)) == {
        "max_length": 32
    }  # a shorter student: its length
    assert teacher_lengths(TrainConfig.from_dict({"model": mice, "data": {"teacher_max_length": 100}}), str(ce)) == {
        "max_length": 100
    }  # told otherwise


def _score_in_a_process(args):
    from pyterrier_mice.training import teacher as teacher_mod

    teacher_mod.CHUNK = 2
    ckpt, qs, ds, cache = args
    t = _SlowTeacher()
    return teacher_mod.teacher_scores(t, ckpt, qs, ds, cache, verbose=False).tolist(), t.scored


def test_two_processes_scoring_the_same_pairs_share_the_cache(tmp_path):
    """Two runs that need the teacher's scores of the same pairs at the same time (two variants of one
    comparison, same seed): one scores, the other waits and reads; neither fails."""
    import multiprocessing

    ckpt = tmp_path / "teacher"
    ckpt.mkdir()
    (ckpt / "config.json").write_text("{}")
    qs = [f"query {i}" for i in range(12)]
    ds = [f"document {i} " * (i + 1) for i in range(12)]
    args = (str(ckpt), qs, ds, str(tmp_path / "cache"))
    with multiprocessing.get_context("fork").Pool(2) as pool:
        results = pool.map(_score_in_a_process, [args, args])
    expected = [len(q) + 0.5 * len(d) for q, d in zip(qs, ds)]
    assert all(np.allclose(scores, expected) for scores, _ in results)
    assert sorted(n for _, n in results) == [0, 12]  # scored once


def test_a_bi_encoder_teacher_embeds_each_text_once_and_scores_as_uncached(tokenizer, tmp_path):
    """The teacher's cached scores equal the uncached ones (1e-5); each distinct text is embedded once
    per run, and a later run with the same model (another run folder) reuses the embeddings kept in
    the shared cache."""
    from pyterrier_mice import BiEncoderReranker
    from pyterrier_mice.training.teacher import teacher_scores

    from test_bi_encoder import _tiny

    path = _tiny(tmp_path / "st", tokenizer, max_seq_length=32)
    docs = ["the wing in the tunnel", "heat flow on a plate", "a shock wave", "birds fly"] * 30
    queries = [f"query {i % 7} about wings" for i in range(len(docs))]
    uncached = BiEncoderReranker.from_pretrained(path).score_pairs(queries, docs)
    teacher = BiEncoderReranker.from_pretrained(path, batch_size=8)
    encoded = []
    real = teacher._encode
    teacher._encode = lambda texts, side: encoded.extend(texts) or real(texts, side)
    scores = teacher_scores(teacher, path, queries, docs, str(tmp_path / "cache"), verbose=False)
    np.testing.assert_allclose(scores, uncached, rtol=0, atol=1e-5)
    assert sorted(encoded) == sorted(set(docs) | set(queries))  # each distinct text once
    encoded.clear()
    teacher_scores(teacher, path, queries[:-1], docs[:-1], str(tmp_path / "other-run"), verbose=False)
    assert encoded == []  # the embeddings of the first run, reused


def test_runs_ending_at_once_each_add_their_embeddings(tokenizer, tmp_path):
    from pyterrier_mice import BiEncoderReranker

    from test_bi_encoder import _tiny

    path = _tiny(tmp_path / "st", tokenizer, max_seq_length=32)
    a, b = BiEncoderReranker.from_pretrained(path), BiEncoderReranker.from_pretrained(path)
    store = str(tmp_path / "embeddings.npz")
    with a.cached_embeddings(store) as first:
        with b.cached_embeddings(store) as second:  # both read the file before either wrote it
            b.embed(["the wing"], "document")
        a.embed(["a plate"], "document")
    assert len(first) == len(second) == 1
    with np.load(store) as saved:
        assert len(saved.files) == 2  # neither run's embedding lost


def test_the_fused_teacher_scores_as_score_fusion_ranks(tokenizer, beir_folder, tmp_path):
    """``data.teacher_fusion``: each group document's teacher score is the one ScoreFusion gives it at the
    same weight, among its query's BM25 candidates (the normalisation of inference, not another)."""
    import pandas as pd

    from pyterrier_mice import BiEncoderReranker, ScoreFusion
    from pyterrier_mice.evaluation.datasets import BeirFolder
    from pyterrier_mice.evaluation.retrieval import bm25
    from pyterrier_mice.training.data import attach_teacher_scores, beir_groups
    from pyterrier_mice.training.fused_teacher import LOOKUP_DEPTH, fuse_with_bm25

    import pyterrier as pt

    from test_bi_encoder import _tiny

    path = _tiny(tmp_path / "st", tokenizer, max_seq_length=32)
    teacher = BiEncoderReranker.from_pretrained(path)
    ds = BeirFolder(beir_folder)
    data = beir_groups(ds, "test", None, k=5, negatives=2, seed=0)
    attach_teacher_scores(data, teacher, path, str(tmp_path / "cache"))
    topics = pd.DataFrame([(g.qid, g.query) for g in data.groups], columns=["qid", "query"]).drop_duplicates("qid")
    fuse_with_bm25(data, ds, topics, teacher, path, str(tmp_path / "cache"), {"weight": 0.3, "depth": 3})
    first = (bm25(ds, num_results=LOOKUP_DEPTH) >> pt.text.get_text(ds, "text"))(topics)
    expected = ScoreFusion(teacher, weight=0.3, depth=3)(first).set_index(["qid", "docno"])["score"]
    compared = 0
    for grp in data.groups:
        for docno, score in zip(grp.docnos, grp.teacher):
            if (grp.qid, docno) in expected.index:
                assert score == pytest.approx(expected[(grp.qid, docno)], abs=1e-5)
                compared += 1
    assert compared > 10
