"""Every re-ranker computing in bf16 (autocast) or int8 (quantised linear layers) on the CPU agrees
with the same re-ranker in fp32, on the tiny models of the contract suite: scores within a stated
absolute tolerance. A trained model's ranking cost on a real
collection is measured by ``benchmarks/pareto.py`` (``benchmarks.rst``): the tiny models' scores
spread too little for a ranking test, so here the scores are compared."""

import numpy as np
import pytest

from rerankers import FACTORIES
from test_reranker_contract import frame

#: precision → the largest |Δ score| allowed against fp32, per unit of the largest |score| (at least 1;
#: ColBERT's are sums over query tokens): bf16 keeps 8 bits of mantissa; int8 quantises each linear
#: layer's inputs and weights
TOLERANCE = {"bf16": 0.02, "int8": 0.05}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return str(tmp_path_factory.mktemp("models"))


@pytest.mark.parametrize("precision", list(TOLERANCE))
@pytest.mark.parametrize("name", list(FACTORIES))
def test_each_reduced_precision_agrees_with_fp32(name, precision, tokenizer, root):
    inp = frame(qids=("1", "2", "3"), docnos=("d1", "d2", "d3", "d4", "d5", "d6"))
    fp32 = FACTORIES[name](tokenizer, root, batch_size=4)(inp).set_index(["qid", "docno"])["score"]
    got = FACTORIES[name](tokenizer, root, batch_size=4, precision=precision)(inp).set_index(["qid", "docno"])["score"]
    got = got.loc[fp32.index]
    assert np.isfinite(got).all() and not got.equals(fp32)  # computed in another precision, not fp32 again
    scale = max(1.0, float(np.abs(fp32).max()))
    assert np.abs(got - fp32).max() <= TOLERANCE[precision] * scale, (name, precision, float(np.abs(got - fp32).max()))
