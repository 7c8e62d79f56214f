"""The peers ``benchmarks/efficiency.py`` times this package against score as this package does on
the same weights and inputs: sentence-transformers' ``CrossEncoder.predict`` equals the
cross-encoder re-ranker, and PyLate's ColBERT (a checkpoint in PyLate's layout, run by
sentence-transformers' ``MultiVectorEncoder``) equals ColBERT in its standard input form."""

import os
import sys

import numpy as np
import pandas as pd
import pytest
from transformers import AutoTokenizer

from pyterrier_mice import ColBERTModel, ColBERTReranker, CrossEncoderReranker, MaskedCrossEncoderModel

from conftest import tiny_encoder

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
import peers  # noqa: E402

pytest.importorskip("sentence_transformers", reason="the peers need the bench extra (sentence-transformers)")

TEXTS = [
    "The boundary layer of a wing, at high speed: pressure and heat.",
    "plate",
    "Shock waves (in a wind tunnel) and the boundary layer; a model's drag!",
    "heat flow on a flat plate, measured at Mach 3",
]


def _frame():
    return pd.DataFrame(
        {"qid": "1", "query": "boundary layer of a wing?", "docno": [f"d{i}" for i in range(4)], "text": TEXTS}
    )


def _in_row_order(reranked, frame):
    return reranked.set_index("docno")["score"].loc[frame["docno"]].to_numpy()


@pytest.fixture(scope="module")
def minilm_tokenizer(minilm_path):
    return AutoTokenizer.from_pretrained(minilm_path)


def test_sentence_transformers_cross_encoder_scores_as_ours(minilm_tokenizer, tmp_path):
    model = MaskedCrossEncoderModel.from_encoder(tiny_encoder(vocab_size=minilm_tokenizer.vocab_size), minilm_tokenizer)
    frame = _frame()
    ours = _in_row_order(CrossEncoderReranker(model, minilm_tokenizer, max_length=32)(frame), frame)
    peers.save_cross_encoder(model, minilm_tokenizer, str(tmp_path))
    score, _ = peers.st_cross_encoder(str(tmp_path), batch_size=2, max_length=32)
    np.testing.assert_allclose(score(frame), ours, atol=1e-5)


def test_pylate_colbert_scores_as_ours(minilm_tokenizer, tmp_path):
    model = ColBERTModel.from_encoder(
        tiny_encoder(vocab_size=minilm_tokenizer.vocab_size),
        minilm_tokenizer,
        dim=16,
        query_max_length=12,
        doc_max_length=24,
        input_form="standard",
    )
    frame = _frame()
    ours = _in_row_order(ColBERTReranker(model, minilm_tokenizer)(frame), frame)
    peers.save_colbert(model, minilm_tokenizer, str(tmp_path))
    score, _ = peers.pylate_colbert(str(tmp_path), batch_size=2)
    np.testing.assert_allclose(score(frame), ours, atol=1e-5)


def test_flop_counter_counts_the_cpu_attention_kernel():
    """torch's FlopCounterMode counts the CPU attention kernel as 0 FLOPs; the benchmark's counter
    counts its Q·Kᵀ and P·V products."""
    import torch
    import torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode

    from common import flop_counter

    q, k = torch.randn(2, 3, 5, 8), torch.randn(2, 3, 7, 8)
    mask = torch.ones(2, 1, 5, 7, dtype=torch.bool)
    with FlopCounterMode(display=False) as plain:
        F.scaled_dot_product_attention(q, k, k, attn_mask=mask)
    with flop_counter() as counted:
        F.scaled_dot_product_attention(q, k, k, attn_mask=mask)
    assert plain.get_total_flops() == 0  # the defect the benchmark works around
    assert counted.get_total_flops() == 2 * 2 * 3 * 5 * 7 * (8 + 8)


def test_flashrank_ranks_as_ours_within_int8_error(minilm_tokenizer, tmp_path):
    """FlashRank runs the same weights exported to ONNX and quantised to int8: its logits follow
    ours to int8's error, and fp32 ONNX (before quantisation) equals ours exactly."""
    pytest.importorskip("flashrank", reason="FlashRank is in the bench extra")
    pytest.importorskip("onnxruntime", reason="ONNX Runtime is in the bench extra")
    import onnxruntime

    model = MaskedCrossEncoderModel.from_encoder(tiny_encoder(vocab_size=minilm_tokenizer.vocab_size), minilm_tokenizer)
    frame = _frame()
    ours = _in_row_order(CrossEncoderReranker(model, minilm_tokenizer, max_length=32)(frame), frame)
    peers.save_flashrank(model, minilm_tokenizer, str(tmp_path), max_length=32)
    session = onnxruntime.InferenceSession(str(tmp_path / "model-fp32.onnx"))
    enc = minilm_tokenizer(
        list(frame["query"]),
        list(frame["text"]),
        truncation="longest_first",
        max_length=32,
        padding=True,
        return_tensors="np",
    )
    (logits,) = session.run(
        None, {k: enc[k].astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}
    )
    np.testing.assert_allclose(logits[:, 0], ours, atol=1e-4)
    score, _ = peers.flashrank(str(tmp_path), max_length=32)
    flash = score(frame)
    assert np.abs(flash - ours).max() < 0.1 * (np.ptp(ours) + 1e-3) + 0.05
