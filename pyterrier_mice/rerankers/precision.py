"""What a re-ranker computes in (``precision=``): fp32; fp16 or bf16 weights on CUDA; bf16 autocast on
the CPU (the weights stay fp32, matrix products run in bf16); int8 dynamic quantisation of the linear
layers on the CPU (a quantised copy scores, the fp32 model stays for training, indexes and pickles).
A precision a device cannot honour is refused in one line."""

from __future__ import annotations

import contextlib
import copy
import warnings

import torch

#: every ``precision=`` a re-ranker takes (None: as loaded, fp32)
PRECISIONS = (None, "fp32", "fp16", "bf16", "int8")
#: the modules int8 leaves in fp32: the score heads and output projections, whose few outputs are the
#: scores themselves (quantising them moves every score; the transformer layers hold the compute)
HEADS = {"classifier", "pooler", "head", "projection"}


def check_precision(precision, device: torch.device, who: str) -> str | None:
    """``precision`` if ``device`` can honour it (see the module docstring), else one clear error."""
    if precision not in PRECISIONS:
        raise ValueError(f"{who}: precision={precision!r}; expected one of {list(PRECISIONS)}")
    if device.type == "cpu" and precision == "fp16":
        raise ValueError(
            f"{who}: precision='fp16' runs on CUDA; on the CPU use 'bf16' (autocast) or 'int8' (quantised "
            "linear layers)"
        )
    if device.type != "cpu" and precision == "int8":
        raise ValueError(
            f"{who}: precision='int8' (dynamic quantisation) runs on the CPU; on {device.type} use 'fp16' or 'bf16'"
        )
    return precision


def weights_dtype(precision, device: torch.device) -> torch.dtype | None:
    """The dtype the model's weights are cast to (None: kept as loaded): only fp16/bf16 on CUDA."""
    if device.type != "cpu" and precision in ("fp16", "bf16"):
        return {"fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    return None


class Computing:
    """The model a re-ranker scores with, in its precision: the model itself (fp32, or cast on CUDA),
    under bf16 autocast (CPU), or a quantised copy rebuilt whenever the model's weights change (int8)."""

    def __init__(self, precision, device: torch.device):
        self.precision, self.device = precision, device
        self._quantised = None
        self._versions = None

    def __getstate__(self):
        return {"precision": self.precision, "device": self.device, "_quantised": None, "_versions": None}

    @contextlib.contextmanager
    def scoring(self, reranker):
        """Within this block ``reranker.model`` computes in the precision."""
        if self.precision == "bf16" and self.device.type == "cpu":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                yield
        elif self.precision == "int8":
            model = reranker.model
            reranker.model = self.quantised(model)
            try:
                yield
            finally:
                reranker.model = model
        else:
            yield

    def quantised(self, model):
        """``model`` with its linear layers dynamically quantised to int8 (cached until its weights change)."""
        versions = [(t.data_ptr(), t._version) for t in model.state_dict().values()]
        if self._quantised is None or versions != self._versions:
            layers = {
                name
                for name, m in model.named_modules()
                if isinstance(m, torch.nn.Linear) and not HEADS.intersection(name.split("."))
            }
            with warnings.catch_warnings():
                # torch 2.13 announces the removal of its quantised tensors (torchao takes them over); the
                # kernels run and are tested here, and the note is not the user's to act on
                warnings.filterwarnings("ignore", message=r"torch\.quantize_per_tensor", category=UserWarning)
                self._quantised = torch.ao.quantization.quantize_dynamic(
                    copy.deepcopy(model).eval(), layers, dtype=torch.qint8
                )
            self._versions = versions
        return self._quantised


def is_quantised(linear) -> bool:
    """Whether a linear layer was dynamically quantised (its weights are then not a tensor to read)."""
    return not isinstance(getattr(linear, "weight", None), torch.Tensor)
