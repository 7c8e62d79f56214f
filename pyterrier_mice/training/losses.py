"""Training losses over a group of scores per query: column 0 the positive, columns 1.. negatives."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F


def margin_mse(scores: torch.Tensor, teacher: torch.Tensor | None) -> torch.Tensor:
    """MarginMSE (Hofstätter et al.): MSE between student and teacher margins pos − neg."""
    if teacher is None:
        raise ValueError("loss 'margin_mse' needs teacher scores (data.teacher)")
    return F.mse_loss(scores[:, :1] - scores[:, 1:], teacher[:, :1] - teacher[:, 1:])


def kl_div(scores: torch.Tensor, teacher: torch.Tensor | None, temperature: float = 1.0) -> torch.Tensor:
    """Listwise distillation: KL divergence from the teacher's softmax over the group (its scores
    divided by ``temperature``) to the student's, averaged over groups."""
    if teacher is None:
        raise ValueError("loss 'kl_div' needs teacher scores (data.teacher)")
    return F.kl_div(
        F.log_softmax(scores, dim=1),
        F.log_softmax(teacher / temperature, dim=1),
        reduction="batchmean",
        log_target=True,
    )


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


def loss_parts(name: str) -> list[str]:
    """The losses a loss name sums: ``"infonce+kl_div"`` → ``["infonce", "kl_div"]``."""
    parts = name.split("+")
    unknown = [p for p in parts if p not in LOSSES]
    if unknown or len(set(parts)) != len(parts):
        raise ValueError(
            f"loss={name!r}; expected one of {list(LOSSES)}, or several joined by '+' "
            "(e.g. infonce+kl_div: the labels and the teacher)"
        )
    return parts


def needs_teacher(name: str) -> bool:
    """Whether a loss (or any loss of a sum) distils a teacher's scores."""
    return any(p in DISTILLATION_LOSSES for p in loss_parts(name))


def get_loss(name: str, temperature: float = 1.0):
    """The loss ``name`` (one of :data:`LOSSES`, or a sum such as ``infonce+kl_div``) as
    ``fn(scores, teacher)``; ``temperature`` divides the teacher's scores of ``kl_div``."""
    parts = loss_parts(name)

    fns = [functools.partial(kl_div, temperature=temperature) if p == "kl_div" else LOSSES[p] for p in parts]
    if len(fns) == 1:
        return fns[0]
    return lambda scores, teacher: sum(fn(scores, teacher) for fn in fns)
