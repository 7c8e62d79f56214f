"""The masked cross-encoder equals the plain HF model under the 'full' policy, and round-trips."""

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from pyterrier_mice import MaskedCrossEncoderModel

from conftest import tiny_encoder

PAIRS = (
    ["what is the boundary layer", "heat", "shock wave in a tunnel"],
    ["the boundary layer of a wing at high speed and low pressure", "plate", "wave"],
)


def _inputs(tokenizer, kind):
    enc = tokenizer(*PAIRS, padding=True, return_tensors="pt")
    if kind == "modernbert":
        enc.pop("token_type_ids")
    return enc


def test_full_policy_equals_hf(kind, tokenizer):
    hf = tiny_encoder(kind)
    model = MaskedCrossEncoderModel.from_encoder(hf, tokenizer, "full").eval()
    enc = _inputs(tokenizer, kind)
    with torch.no_grad():
        torch.testing.assert_close(model(**enc).logits, hf(**enc).logits, atol=1e-5, rtol=0)


def test_full_policy_equals_hf_mean_pooling_modernbert(tokenizer):
    hf = tiny_encoder("modernbert", classifier_pooling="mean")
    model = MaskedCrossEncoderModel.from_encoder(hf, tokenizer).eval()
    enc = _inputs(tokenizer, "modernbert")
    with torch.no_grad():
        torch.testing.assert_close(model(**enc).logits, hf(**enc).logits, atol=1e-5, rtol=0)


@pytest.mark.minilm
def test_full_policy_equals_hf_minilm(minilm_path):
    tok = AutoTokenizer.from_pretrained(minilm_path)
    torch.manual_seed(0)
    hf = AutoModelForSequenceClassification.from_pretrained(minilm_path, num_labels=1).eval()
    model = MaskedCrossEncoderModel.from_backbone(minilm_path, "full").eval()
    model.encoder.classifier.load_state_dict(hf.classifier.state_dict())
    enc = tok(*PAIRS, padding=True, return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(model(**enc).logits, hf(**enc).logits, atol=1e-5, rtol=0)


def test_policies_change_scores_and_save_load(kind, tokenizer, tmp_path):
    model = MaskedCrossEncoderModel.from_encoder(tiny_encoder(kind), tokenizer, "mask3-2").eval()
    enc = _inputs(tokenizer, kind)
    with torch.no_grad():
        masked = model(**enc).logits
        model.save_pretrained(tmp_path)
        loaded = MaskedCrossEncoderModel.from_pretrained(tmp_path).eval()
        assert loaded.policy == model.policy
        torch.testing.assert_close(loaded(**enc).logits, masked, atol=1e-6, rtol=0)
        model.set_policy("full")
        assert not torch.allclose(model(**enc).logits, masked)


def test_unknown_backbone_type_is_refused(tokenizer):
    from transformers import DistilBertConfig

    hf = AutoModelForSequenceClassification.from_config(
        DistilBertConfig(vocab_size=100, dim=32, n_layers=1, n_heads=2, hidden_dim=64)
    )
    with pytest.raises(ValueError, match="unsupported backbone model_type 'distilbert'"):
        MaskedCrossEncoderModel.from_encoder(hf, tokenizer)
