"""MICE, Minimal Interaction Cross-Encoders: queries and documents encoded apart for ℓ* layers,
then interaction layers in which the query reads the frozen document states.

- :mod:`.config`: :class:`MiceConfig`, every option defined, documented and validated once;
- :mod:`.masks`: the interaction layers' attention masks;
- :mod:`.interaction`: the interaction layers and one schedule per ``interaction`` order;
- :mod:`.model`: :class:`MiceModel`;
- :mod:`.authors`: the MICE authors' checkpoints, read into :class:`MiceModel`."""

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
