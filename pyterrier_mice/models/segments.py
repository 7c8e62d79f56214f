"""The five segments of a cross-encoder input (``[CLS]``, Q, ``[SEP1]``, D, ``[SEP2]``) and how to
find them from token ids."""

from __future__ import annotations

import torch

SEGMENTS = ("CLS", "Q", "SEP1", "D", "SEP2")
CLS, Q, SEP1, D, SEP2 = range(5)
PAD = -1
NUM_SEGMENTS = len(SEGMENTS)


def segment_index(name: str | int) -> int:
    """Return the index of a segment given its name (case-insensitive) or index."""
    if isinstance(name, int):
        if not 0 <= name < NUM_SEGMENTS:
            raise ValueError(f"segment index {name} out of range 0..{NUM_SEGMENTS - 1}")
        return name
    key = str(name).upper().replace("[", "").replace("]", "")
    aliases = {"C": "CLS", "S1": "SEP1", "S2": "SEP2"}
    key = aliases.get(key, key)
    if key not in SEGMENTS:
        raise ValueError(f"unknown segment {name!r}; expected one of {SEGMENTS}")
    return SEGMENTS.index(key)


def segment_ids(
    input_ids: torch.Tensor, attention_mask: torch.Tensor, cls_token_id: int, sep_token_id: int
) -> torch.Tensor:
    """Map each position of ``[CLS] q [SEP] d [SEP]`` to its segment (0..4), padding to -1.

    Raises ``ValueError`` when a row does not have exactly that shape (e.g. text that
    smuggled in a literal ``[SEP]``, or a single-sequence input).
    """
    special = ((input_ids == cls_token_id) | (input_ids == sep_token_id)).long()
    shifted = torch.nn.functional.pad(special[:, :-1], (1, 0))
    seg = torch.cumsum(special + shifted, dim=1) - 1
    valid = attention_mask.bool()
    seg = torch.where(valid, seg, torch.full_like(seg, PAD))
    n_special = (special.bool() & valid).sum(dim=1)
    bad = (n_special != 3) | (input_ids[:, 0] != cls_token_id)
    if bool(bad.any()):
        row = int(bad.nonzero()[0, 0])
        raise ValueError(
            f"input row {row} is not of the form [CLS] query [SEP] document [SEP] "
            f"({int(n_special[row])} special tokens found); does the text contain special tokens?"
        )
    return seg
