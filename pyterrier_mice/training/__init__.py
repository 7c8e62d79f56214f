"""Training: one trainer for every model family (MarginMSE, KL, BCE, InfoNCE), and :func:`run`, which
prepares the data and trains from a config. The names are imported when first used."""

from .._lazy import lazy_exports

_WHERE = {
    **{name: ".config" for name in ("BACKBONE", "DataConfig", "EvalConfig", "ModelConfig", "TrainConfig")},
    **{
        name: ".data"
        for name in (
            "Group",
            "GroupData",
            "attach_teacher_scores",
            "beir_groups",
            "bm25_run",
            "holdout_qids",
            "msmarco_teacher_groups",
            "pseudo_query_groups",
        )
    },
    **{name: ".losses" for name in ("LOSSES", "get_loss")},
    "build_reranker": ".models",
    "Trainer": ".trainer",
    **{name: ".runner" for name in ("run", "teacher_lengths", "sample_queries")},
}

__getattr__, __dir__ = lazy_exports(__name__, _WHERE)

__all__ = [
    "teacher_lengths",
    "attach_teacher_scores",
    "TrainConfig",
    "ModelConfig",
    "DataConfig",
    "EvalConfig",
    "Group",
    "GroupData",
    "beir_groups",
    "pseudo_query_groups",
    "bm25_run",
    "msmarco_teacher_groups",
    "LOSSES",
    "get_loss",
    "build_reranker",
    "Trainer",
    "run",
]
