"""Training losses over a group of scores per query: column 0 the positive, columns 1.. negatives.

Training layer: imports no other module of the package."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def margin_mse(scores: torch.Tensor, teacher: torch.Tensor | None) -> torch.Tensor:
    """MarginMSE (Hofstätter et al.): MSE between student and teacher margins pos − neg."""
    if teacher is None:
        raise ValueError("loss 'margin_mse' needs teacher scores (data.teacher)")
    return F.mse_loss(scores[:, :1] - scores[:, 1:], teacher[:, :1] - teacher[:, 1:])


def kl_div(scores: torch.Tensor, teacher: torch.Tensor | None) -> torch.Tensor:
    """Listwise distillation: KL divergence from the teacher's softmax over the group to the
    student's (both at temperature 1), averaged over groups."""
    if teacher is None:
        raise ValueError("loss 'kl_div' needs teacher scores (data.teacher)")
    return F.kl_div(F.log_softmax(scores, dim=1), F.log_softmax(teacher, dim=1), reduction="batchmean",
                    log_target=True)


def bce(scores: torch.Tensor, teacher: torch.Tensor | None = None) -> torch.Tensor:
    """Pointwise binary cross-entropy: positive 1, negatives 0."""
    labels = torch.zeros_like(scores)
    labels[:, 0] = 1.0
    return F.binary_cross_entropy_with_logits(scores, labels)


def infonce(scores: torch.Tensor, teacher: torch.Tensor | None = None) -> torch.Tensor:
    """Listwise softmax cross-entropy of the positive against the query's negatives."""
    return F.cross_entropy(scores, torch.zeros(scores.shape[0], dtype=torch.long, device=scores.device))


LOSSES = {"margin_mse": margin_mse, "kl_div": kl_div, "bce": bce, "infonce": infonce}
DISTILLATION_LOSSES = ("margin_mse", "kl_div")  # the losses that need a teacher's scores


def get_loss(name: str):
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; expected one of {list(LOSSES)}")
    return LOSSES[name]
