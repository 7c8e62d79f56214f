"""Tokenisation into model inputs: texts tokenised once without special tokens, then assembled
into ``[CLS] q [SEP] d [SEP]`` pairs or single sequences, truncated as the models need."""

from __future__ import annotations

from typing import Sequence

import torch


def tokenize(tokenizer, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of each text, without special tokens (special-token strings are split)."""
    if not len(texts):
        return []
    return tokenizer(
        list(texts),
        add_special_tokens=False,
        split_special_tokens=True,
        return_attention_mask=False,
        return_token_type_ids=False,
        verbose=False,
    )["input_ids"]


def truncate_pair(lq: int, ld: int, budget: int) -> tuple[int, int]:
    """Lengths kept by HF's ``longest_first`` truncation of a pair to ``budget`` tokens (its specials
    aside), as the fast tokenizers compute it: the shorter text is kept whole when it is at most half
    of the budget (the longer one gets the rest); otherwise each gets half, and an odd budget's extra
    token goes to the longer one (to the document when the two are equally long)."""
    if lq + ld <= budget:
        return lq, ld
    swap = lq > ld
    short = ld if swap else lq
    if short <= budget - short:
        kept = (short, budget - short)
    else:
        kept = (budget // 2, budget // 2 + budget % 2)
    return kept[::-1] if swap else kept


class InputBuilder:
    """Builds padded tensors for pairs and single sequences with one tokenizer's special ids."""

    def __init__(self, tokenizer):
        self.cls = tokenizer.cls_token_id
        self.sep = tokenizer.sep_token_id
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    def pair(self, q: list[int], d: list[int], max_length: int) -> tuple[list[int], list[int], bool]:
        """``[CLS] q [SEP] d [SEP]`` ids, token types (0 then 1), and whether it was truncated."""
        kq, kd = truncate_pair(len(q), len(d), max_length - 3)
        ids = [self.cls, *q[:kq], self.sep, *d[:kd], self.sep]
        types = [0] * (kq + 2) + [1] * (kd + 1)
        return ids, types, (kq, kd) != (len(q), len(d))

    def single(self, x: list[int], max_length: int) -> tuple[list[int], bool]:
        """``[CLS] x [SEP]`` ids and whether ``x`` was truncated."""
        k = min(len(x), max_length - 2)
        return [self.cls, *x[:k], self.sep], k != len(x)

    def batch(
        self,
        seqs: Sequence[list[int]],
        types: Sequence[list[int]] | None = None,
        length: int | None = None,
        pad_id: int | None = None,
    ) -> dict:
        """Right-padded ``input_ids``/``attention_mask`` (and ``token_type_ids``) tensors; padding
        uses ``pad_id`` (default the tokenizer's pad token) with attention mask 0."""
        n = length if length is not None else max(len(s) for s in seqs)
        ids = torch.full((len(seqs), n), self.pad if pad_id is None else pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), n), dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
            mask[i, : len(s)] = 1
        out = {"input_ids": ids, "attention_mask": mask}
        if types is not None:
            tt = torch.zeros((len(seqs), n), dtype=torch.long)
            for i, t in enumerate(types):
                tt[i, : len(t)] = torch.tensor(t, dtype=torch.long)
            out["token_type_ids"] = tt
        return out
