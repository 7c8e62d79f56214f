__version__ = "0.1.0"
"""pyterrier-mice: MICE and attention-masked cross-encoders as PyTerrier re-rankers.

The package is layered; each folder imports only those below it (``.importlinter``, checked in CI):
``models`` < ``loaders`` and ``index`` < ``rerankers`` < ``evaluation`` < ``training`` < ``tutorial``,
``classroom`` < ``cli``."""
from . import _legacy
from . import loaders as _loaders  # noqa: F401  (lets MiceModel.from_pretrained read the authors' checkpoints)
from .index import DocStateIndex, MiceIndex, MiceIndexError
from .models import (POLICY_NAMES, AttentionPolicy, Block, ColBERTConfig, ColBERTModel, MaskedCrossEncoderConfig,
                     MaskedCrossEncoderModel, MiceConfig, MiceModel, PreTTRConfig, PreTTRModel, get_policy,
                     plot_policy)
from .rerankers import (BiEncoderReranker, ColBERTReranker, CrossEncoderReranker, MaskedCrossEncoder, MiceReranker,
                        PreTTRReranker, Reranker, ScoreFusion, SparseCrossEncoderReranker, load_reranker)

_legacy.install(__name__)

__all__ = [
    "AttentionPolicy", "Block", "get_policy", "plot_policy", "POLICY_NAMES",
    "MaskedCrossEncoderConfig", "MaskedCrossEncoderModel",
    "MiceConfig", "MiceModel", "ColBERTConfig", "ColBERTModel", "ColBERTReranker",
    "PreTTRConfig", "PreTTRModel", "PreTTRReranker",
    "Reranker", "CrossEncoderReranker", "MaskedCrossEncoder", "SparseCrossEncoderReranker", "MiceReranker",
    "BiEncoderReranker", "ScoreFusion", "load_reranker",
    "DocStateIndex", "MiceIndex", "MiceIndexError",
]
