"""The models: HF ``PreTrainedModel`` s that score (query, document) pairs, with no PyTerrier in them.
The backbone adapter (BERT, ModernBERT), masked attention, attention policies and segments, HF
checkpoint helpers, the model classes (masked cross-encoder, MICE, ColBERT, PreTTR), sentence-embedding
models, and the registry of model families."""

from .colbert import ColBERTConfig, ColBERTModel
from .masked import CrossEncoderOutput, MaskedCrossEncoderConfig, MaskedCrossEncoderModel
from .mice import MiceConfig, MiceModel
from .policies import POLICY_NAMES, AttentionPolicy, Block, get_policy, plot_policy
from .prettr import PreTTRConfig, PreTTRModel
from .registry import FAMILIES, MODEL_CLASSES

__all__ = [
    "ColBERTConfig",
    "ColBERTModel",
    "CrossEncoderOutput",
    "MaskedCrossEncoderConfig",
    "MaskedCrossEncoderModel",
    "MiceConfig",
    "MiceModel",
    "POLICY_NAMES",
    "AttentionPolicy",
    "Block",
    "get_policy",
    "plot_policy",
    "PreTTRConfig",
    "PreTTRModel",
    "FAMILIES",
    "MODEL_CLASSES",
]
