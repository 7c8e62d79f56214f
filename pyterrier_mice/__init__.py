__version__ = "0.1.0"
"""pyterrier-mice: MICE and attention-masked cross-encoders as PyTerrier re-rankers."""
from .policies import AttentionPolicy, Block, get_policy, plot_policy, POLICY_NAMES
from .modeling_masked import MaskedCrossEncoderConfig, MaskedCrossEncoderModel
from .modeling_mice import MiceConfig, MiceModel
from .modeling_colbert import ColBERTConfig, ColBERTModel
from .modeling_prettr import PreTTRConfig, PreTTRModel
from .registry import register as _register
from .reranker_base import Reranker
from .cross_encoder import CrossEncoderReranker, MaskedCrossEncoder, SparseCrossEncoderReranker
from .index import DocStateIndex, MiceIndex, MiceIndexError
from .mice_reranker import MiceReranker
from .colbert_reranker import ColBERTReranker
from .prettr_reranker import PreTTRReranker

_register()

__all__ = [
    "AttentionPolicy", "Block", "get_policy", "plot_policy", "POLICY_NAMES",
    "MaskedCrossEncoderConfig", "MaskedCrossEncoderModel",
    "MiceConfig", "MiceModel", "ColBERTConfig", "ColBERTModel", "ColBERTReranker",
    "PreTTRConfig", "PreTTRModel", "PreTTRReranker",
    "Reranker", "CrossEncoderReranker", "MaskedCrossEncoder", "SparseCrossEncoderReranker", "MiceReranker",
    "DocStateIndex", "MiceIndex", "MiceIndexError",
]
