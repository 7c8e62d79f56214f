"""pyterrier-mice: MICE and attention-masked cross-encoders as PyTerrier re-rankers.

The package is layered; each folder imports only those below it (``.importlinter``, checked in CI):
``models`` < ``loaders`` and ``index`` < ``rerankers`` < ``evaluation`` < ``training`` < ``tutorial``,
``classroom`` < ``cli``. The names below are imported when first used (``import pyterrier_mice`` is
instant)."""

__version__ = "0.1.0"
from . import _legacy
from ._lazy import lazy_exports

_WHERE = {
    **{
        name: ".models"
        for name in (
            "POLICY_NAMES",
            "AttentionPolicy",
            "Block",
            "get_policy",
            "plot_policy",
            "MaskedCrossEncoderConfig",
            "MaskedCrossEncoderModel",
            "MiceConfig",
            "MiceModel",
            "ColBERTConfig",
            "ColBERTModel",
            "PreTTRConfig",
            "PreTTRModel",
        )
    },
    **{
        name: ".rerankers"
        for name in (
            "BiEncoderReranker",
            "ColBERTReranker",
            "CrossEncoderReranker",
            "MaskedCrossEncoder",
            "MiceReranker",
            "PreTTRReranker",
            "Reranker",
            "ScoreFusion",
            "SparseCrossEncoderReranker",
            "load_reranker",
        )
    },
    **{name: ".index" for name in ("MiceIndex", "MiceIndex", "MiceIndexError")},
    "open_dataset": ".evaluation.experiment",  # what a notebook needs beside the models
    "load_tokenizer": ".models.checkpoints",
}


def _register_loaders():
    """Importing the loaders lets ``MiceModel.from_pretrained`` read the authors' checkpoints."""
    from . import loaders  # noqa: F401


__getattr__, __dir__ = lazy_exports(__name__, _WHERE, before=_register_loaders)
_legacy.install(__name__)

__all__ = list(_WHERE)
