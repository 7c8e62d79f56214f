"""Registers this package's configs and models with the HF Auto classes."""
from transformers import AutoConfig, AutoModel

from .modeling_masked import MaskedCrossEncoderConfig, MaskedCrossEncoderModel
from .modeling_mice import MiceConfig, MiceModel
from .modeling_colbert import ColBERTConfig, ColBERTModel
from .modeling_prettr import PreTTRConfig, PreTTRModel

MODELS = [(MaskedCrossEncoderConfig, MaskedCrossEncoderModel), (MiceConfig, MiceModel),
          (ColBERTConfig, ColBERTModel), (PreTTRConfig, PreTTRModel)]
MODEL_CLASSES = {config_cls.model_type: model_cls for config_cls, model_cls in MODELS}


def register() -> None:
    for config_cls, model_cls in MODELS:
        AutoConfig.register(config_cls.model_type, config_cls, exist_ok=True)
        AutoModel.register(config_cls, model_cls, exist_ok=True)
