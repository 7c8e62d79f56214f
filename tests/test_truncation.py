"""Pairs are cut as HF's fast tokenizers cut them (``truncation="longest_first"``): every combination
of query length, document length and ``max_length`` up to a bound, and a cut pair scores as the HF
model scores the tokenizer's own encoding of it."""

import itertools

import numpy as np
import pandas as pd
import torch

from pyterrier_mice import CrossEncoderReranker, MaskedCrossEncoderModel
from pyterrier_mice.rerankers.text import InputBuilder

from conftest import tiny_encoder


def _hf_lengths(tokenizer, lq, ld, max_length):
    """How many query and document tokens the fast tokenizer keeps (batched, as cross-encoders call it)."""
    cat, dog = tokenizer.convert_tokens_to_ids(["cat", "dog"])
    ids = tokenizer(
        [" ".join(["cat"] * lq)], [" ".join(["dog"] * ld)], truncation="longest_first", max_length=max_length
    )["input_ids"][0]
    return ids.count(cat), ids.count(dog)


def test_every_cut_equals_the_fast_tokenizers(tokenizer):
    inputs = InputBuilder(tokenizer)
    cat, dog = tokenizer.convert_tokens_to_ids(["cat", "dog"])
    differ = []
    for lq, ld, max_length in itertools.product(range(13), range(13), range(5, 30)):
        ids, _, _ = inputs.pair([cat] * lq, [dog] * ld, max_length)
        if (ids.count(cat), ids.count(dog)) != _hf_lengths(tokenizer, lq, ld, max_length):
            differ.append((lq, ld, max_length))
    assert not differ, f"{len(differ)} of 4225 combinations differ from the fast tokenizer, e.g. {differ[:5]}"
    assert _hf_lengths(tokenizer, 10, 7, 16) == (7, 6)  # the audit's case: the odd token to the longer text


def test_a_cut_pair_scores_as_the_hf_model_scores_it(tokenizer):
    hf = tiny_encoder("bert", seed=4)
    rr = CrossEncoderReranker(MaskedCrossEncoderModel.from_encoder(hf, tokenizer), tokenizer, max_length=16)
    query, doc = " ".join(["wing"] * 10), " ".join(["heat"] * 7)
    frame = pd.DataFrame({"qid": ["1"], "query": [query], "docno": ["d"], "text": [doc]})
    ours = rr(frame)["score"].to_numpy()
    batch = tokenizer([query], [doc], truncation="longest_first", max_length=16, return_tensors="pt")
    with torch.no_grad():
        theirs = hf(**batch).logits[:, 0].numpy()
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6)
