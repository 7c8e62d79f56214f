"""Caching with pyterrier-caching: a ``ScorerCache`` around a re-ranker inside ``pt.Experiment``
scores nothing the second time and gives the same scores; ``cache_key()`` gives each model and setting
its own cache, so a cache never returns another model's or setting's scores."""

import numpy as np
import pyterrier as pt
import pytest

from pyterrier_mice import CrossEncoderReranker, MaskedCrossEncoderModel, MiceReranker
from pyterrier_mice.evaluation.experiment import open_dataset

from conftest import tiny_encoder

caching = pytest.importorskip("pyterrier_caching")


class Counting(pt.Transformer):
    """Counts the pairs the wrapped re-ranker is asked to score."""

    def __init__(self, inner):
        self.inner, self.pairs = inner, 0

    def transform(self, inp):
        self.pairs += len(inp)
        return self.inner(inp)


def test_a_cached_reranker_in_an_experiment_scores_nothing_the_second_time(mice_path, beir_folder, tmp_path):
    from pyterrier_mice.evaluation.retrieval import bm25

    ds = open_dataset(beir_folder, "test")
    rr = MiceReranker.from_pretrained(mice_path)
    counting = Counting(rr)
    cached = caching.ScorerCache(str(tmp_path / "cache" / rr.cache_key()), counting)
    pipeline = bm25(ds.collection, num_results=5) >> pt.text.get_text(ds.collection, "text") >> cached
    first = pt.Experiment([pipeline], ds.topics, ds.qrels, [pt.measures.nDCG @ 10], perquery=True)
    scored = counting.pairs
    assert scored > 0
    second = pt.Experiment([pipeline], ds.topics, ds.qrels, [pt.measures.nDCG @ 10], perquery=True)
    assert counting.pairs == scored  # nothing scored again
    np.testing.assert_allclose(second["value"], first["value"])
    run = pipeline(ds.topics).set_index(["qid", "docno"])["score"]
    direct = (bm25(ds.collection, num_results=5) >> pt.text.get_text(ds.collection, "text") >> rr)(ds.topics)
    direct = direct.set_index(["qid", "docno"])["score"]
    np.testing.assert_allclose(run.loc[direct.index], direct, rtol=1e-6)


def test_the_cache_key_names_the_weights_and_every_setting_that_changes_a_score(tokenizer, tmp_path):
    path = str(tmp_path / "ce")
    MaskedCrossEncoderModel.from_encoder(tiny_encoder("bert"), tokenizer).save_pretrained(path)
    tokenizer.save_pretrained(path)
    key = CrossEncoderReranker.from_pretrained(path).cache_key()
    assert CrossEncoderReranker.from_pretrained(path, batch_size=3).cache_key() == key  # batching: same scores
    changed = [
        CrossEncoderReranker.from_pretrained(path, max_length=16),
        CrossEncoderReranker.from_pretrained(path, "mask1"),
        CrossEncoderReranker.from_pretrained(path, text_field="body"),
    ]
    retrained = CrossEncoderReranker.from_pretrained(path)
    with __import__("torch").no_grad():
        next(retrained.model.parameters()).add_(1e-3)  # another model under the same name
    keys = {rr.cache_key() for rr in changed + [retrained]}
    assert key not in keys and len(keys) == 4
