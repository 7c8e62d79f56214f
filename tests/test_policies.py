"""The policy table matches the paper's masks, and the model really blocks those blocks."""

import numpy as np
import pytest
import torch

from pyterrier_mice import AttentionPolicy, Block, MaskedCrossEncoderModel, get_policy, plot_policy
from pyterrier_mice.models.segments import segment_ids

from conftest import tiny_encoder


def T(rows):
    """Parse a 5×5 table written with ✓/✗, rows receivers C,Q,S1,D,S2."""
    return np.array([[c == "✓" for c in r.split()] for r in rows])


MASK0 = T(["✓ ✓ ✓ ✓ ✓", "✗ ✓ ✓ ✓ ✗", "✗ ✗ ✓ ✗ ✗", "✗ ✓ ✗ ✓ ✓", "✗ ✗ ✗ ✗ ✓"])
MASK1 = T(["✓ ✓ ✓ ✗ ✗", "✗ ✓ ✓ ✓ ✗", "✗ ✗ ✓ ✗ ✗", "✗ ✓ ✗ ✓ ✓", "✗ ✗ ✗ ✗ ✓"])
MASK2 = T(["✓ ✓ ✓ ✗ ✗", "✗ ✓ ✓ ✓ ✗", "✗ ✗ ✓ ✗ ✗", "✗ ✗ ✗ ✓ ✓", "✗ ✗ ✗ ✗ ✓"])
MASK3_LOW = T(["✓ ✓ ✓ ✗ ✗", "✗ ✓ ✓ ✗ ✗", "✗ ✗ ✓ ✗ ✗", "✗ ✗ ✗ ✓ ✓", "✗ ✗ ✗ ✗ ✓"])
SPARSE = T(["✓ ✓ ✓ ✓ ✓", "✗ ✓ ✓ ✗ ✗", "✗ ✓ ✓ ✗ ✗", "✓ ✓ ✓ ✓ ✓", "✓ ✓ ✓ ✓ ✓"])
PRETTR_LOW = T(["✓ ✓ ✓ ✗ ✗", "✓ ✓ ✓ ✗ ✗", "✓ ✓ ✓ ✗ ✗", "✗ ✗ ✗ ✓ ✓", "✗ ✗ ✗ ✓ ✓"])
FULL = np.ones((5, 5), dtype=bool)

# name -> expected table per layer of a 4-layer model
EXPECTED = {
    "full": [FULL] * 4,
    "mask0": [MASK0] * 4,
    "mask1": [MASK1] * 4,
    "mask2": [MASK2] * 4,
    "mask3-2": [MASK3_LOW] * 2 + [MASK2] * 2,
    "sparse_ce": [SPARSE] * 4,
    "prettr-3": [PRETTR_LOW] * 3 + [FULL],
}


@pytest.mark.parametrize("name", EXPECTED)
def test_tables_match_paper(name):
    np.testing.assert_array_equal(get_policy(name).table(4), np.stack(EXPECTED[name]))


def test_policy_names_and_roundtrip():
    assert get_policy("Mask3-l4").name == "mask3-4"
    assert get_policy("PreTTR-6").name == "prettr-6"
    assert get_policy("sparse-ce").name == "sparse_ce"
    p = get_policy("mask3-4")
    assert AttentionPolicy.from_dict(p.to_dict()) == p
    with pytest.raises(ValueError, match="unknown attention policy"):
        get_policy("mask9")


def test_custom_policy_and_blind_segment():
    p = AttentionPolicy("no-doc-doc", (Block("D", "D", 1, 3),))
    t = p.table(4)
    assert not t[1, 3, 3] and not t[2, 3, 3] and t[0, 3, 3] and t[3, 3, 3]
    with pytest.raises(ValueError, match="reads nothing"):
        AttentionPolicy("blind", (Block("CLS", ["CLS", "Q", "SEP1", "D", "SEP2"]),)).table(2)
    with pytest.raises(ValueError, match="unknown segment"):
        Block("X", "D")


def test_segment_ids(tokenizer):
    enc = tokenizer(["what is", "a"], ["the cat runs", "dog"], padding=True, return_tensors="pt")
    seg = segment_ids(enc["input_ids"], enc["attention_mask"], tokenizer.cls_token_id, tokenizer.sep_token_id)
    assert seg[0].tolist() == [0, 1, 1, 2, 3, 3, 3, 4]
    assert seg[1].tolist() == [0, 1, 2, 3, 4, -1, -1, -1]
    single = tokenizer(["what is"], return_tensors="pt")
    with pytest.raises(ValueError, match="not of the form"):
        segment_ids(single["input_ids"], single["attention_mask"], tokenizer.cls_token_id, tokenizer.sep_token_id)


@pytest.mark.parametrize("name", EXPECTED)
def test_attention_probabilities_respect_policy(name, kind, tokenizer):
    """On the model's attention probabilities: blocked blocks get exactly 0, allowed > 0."""
    # local_attention large enough that the ModernBERT window never hides a block
    kw = {"local_attention": 128} if kind == "modernbert" else {}
    model = MaskedCrossEncoderModel.from_encoder(tiny_encoder(kind, **kw), tokenizer, name).eval()
    enc = tokenizer(
        ["what is the wing", "heat"],
        ["the boundary layer of a wing at high speed", "plate"],
        padding=True,
        return_tensors="pt",
    )
    enc.pop("token_type_ids") if kind == "modernbert" else None
    with torch.no_grad():
        out = model(**enc, output_attentions=True)
    seg = segment_ids(enc["input_ids"], enc["attention_mask"], tokenizer.cls_token_id, tokenizer.sep_token_id)
    for layer, probs in enumerate(out.attentions):
        expected = EXPECTED[name][layer]
        for b in range(seg.shape[0]):
            for r in range(5):
                for s in range(5):
                    rows, cols = seg[b] == r, seg[b] == s
                    mass = probs[b][:, rows][:, :, cols].sum(-1)  # [heads, n_rows]
                    if expected[r, s]:
                        assert bool((mass > 0).all()), (layer, r, s)
                    else:
                        assert bool((mass == 0).all()), (layer, r, s)
            # padding is never read
            pad = seg[b] < 0
            assert float(probs[b][:, ~pad][:, :, pad].abs().sum()) == 0.0


def test_plot_policy(tmp_path):
    path = tmp_path / "mask3.png"
    fig = plot_policy("mask3-4", num_layers=12, path=str(path))
    assert path.stat().st_size > 1000
    assert len(fig.axes) == 2  # layers 0-3 and 4-11
