"""MICE, Minimal Interaction Cross-Encoders: queries and documents encoded apart for ℓ* layers,
then interaction layers in which the query reads the frozen document states.

- :mod:`.config`: :class:`MiceConfig`, every option defined, documented and validated once;
- :mod:`.masks`: the interaction layers' attention masks;
- :mod:`.interaction`: the interaction layers and one schedule per ``interaction`` order;
- :mod:`.model`: :class:`MiceModel`.

Models layer: imports only :mod:`pyterrier_mice.models` modules."""

# names the single module (``models/mice.py``, before it ``modeling_mice``) held: still importable from here
from ..attention import (  # noqa: F401
    additive_bias,
    exact_match_weights,
    key_padding_mask,
    lexical_matches,
    mean_value_context,
    pair_mask,
    window_mask,
)
from ..base import BackboneConfig, BackboneModel, special_ids  # noqa: F401
from ..checkpoints import load_encoder, load_tokenizer  # noqa: F401
from ..masked import CrossEncoderOutput  # noqa: F401
from .config import (
    CLS_MODES,
    DEFAULT_CLS_MODE,
    INTERACTIONS,
    PADDING_INVARIANT_MODES,
    POOLINGS,
    MiceConfig,
    check_cls_mode,
)
from .interaction import SCHEDULES, ExactMatchHead, InteractionLayer
from .model import MiceModel

__all__ = [
    "CLS_MODES",
    "DEFAULT_CLS_MODE",
    "INTERACTIONS",
    "PADDING_INVARIANT_MODES",
    "POOLINGS",
    "SCHEDULES",
    "ExactMatchHead",
    "InteractionLayer",
    "MiceConfig",
    "MiceModel",
    "check_cls_mode",
]
