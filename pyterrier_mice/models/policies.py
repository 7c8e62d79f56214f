"""Attention policies: per layer, which receiver segment may read which sender segment; the
paper's masks by name (the table: :class:`AttentionPolicy`) and their figure."""

from __future__ import annotations

import dataclasses
import re
import numpy as np
import torch

from .segments import NUM_SEGMENTS, SEGMENTS, segment_index


@dataclasses.dataclass(frozen=True)
class Block:
    """Receivers ``src`` may not read senders ``dst`` in layers ``start`` ≤ ℓ < ``end`` (``None``: last)."""

    src: tuple[str, ...]
    dst: tuple[str, ...]
    start: int = 0
    end: int | None = None

    def __post_init__(self):
        for field in ("src", "dst"):
            value = getattr(self, field)
            value = (value,) if isinstance(value, (str, int)) else tuple(value)
            object.__setattr__(self, field, tuple(SEGMENTS[segment_index(v)] for v in value))
        if self.start < 0 or (self.end is not None and self.end < self.start):
            raise ValueError(f"invalid layer range [{self.start}, {self.end}) in {self}")

    def to_dict(self) -> dict:
        return {"src": list(self.src), "dst": list(self.dst), "start": self.start, "end": self.end}


@dataclasses.dataclass(frozen=True)
class AttentionPolicy:
    """A named list of :class:`Block` rules.

    A policy is a list of :class:`Block` rules, each forbidding receivers ``src`` from reading
    senders ``dst`` in layers ``[start, end)``. Everything not blocked is allowed; padding is
    never readable. This module is the one table of the paper's masks (rows are receivers,
    columns senders):

    =============  =====================================================================================
    ``full``       no block (a plain cross-encoder)
    ``mask0``      attention-sink removal: only CLS reads CLS, D↛SEP1, Q↛SEP2, SEPs read only themselves
    ``mask1``      mask0 + CLS↛{D, SEP2}
    ``mask2``      mask1 + D↛Q
    ``mask3-L``    mask2 + Q↛D in layers < L
    ``sparse_ce``  {Q, SEP1}↛{CLS, D, SEP2} in all layers (Schlatt et al., 2024)
    ``prettr-L``   {CLS,Q,SEP1} and {D,SEP2} kept apart in layers < L, full above
    =============  =====================================================================================
    """

    name: str
    blocks: tuple[Block, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "blocks", tuple(b if isinstance(b, Block) else Block(**b) for b in self.blocks))

    def table(self, num_layers: int) -> np.ndarray:
        """Boolean ``[num_layers, 5, 5]`` array: ``table[l, r, s]`` iff receiver r may read sender s."""
        allowed = np.ones((num_layers, NUM_SEGMENTS, NUM_SEGMENTS), dtype=bool)
        for b in self.blocks:
            if b.start > num_layers or (b.end is not None and b.end > num_layers):
                raise ValueError(
                    f"policy {self.name!r}: {b} reaches layer {max(b.start, b.end or 0)}, but the model "
                    f"has {num_layers} layers (0..{num_layers - 1}); use a layer number ≤ {num_layers}"
                )
            end = num_layers if b.end is None else b.end
            rows = [segment_index(s) for s in b.src]
            cols = [segment_index(s) for s in b.dst]
            for layer in range(b.start, end):
                allowed[layer][np.ix_(rows, cols)] = False
        for layer in range(num_layers):
            blind = ~allowed[layer].any(axis=1)
            if blind.any():
                raise ValueError(
                    f"policy {self.name!r}: segment {SEGMENTS[int(np.argmax(blind))]} reads nothing in layer {layer}"
                )
        return allowed

    def to_dict(self) -> dict:
        return {"name": self.name, "blocks": [b.to_dict() for b in self.blocks]}

    @classmethod
    def from_dict(cls, d: dict) -> "AttentionPolicy":
        return cls(d["name"], tuple(Block(**b) for b in d.get("blocks", ())))

    def extend(self, name: str, *blocks: Block) -> "AttentionPolicy":
        """A new policy with extra blocks."""
        return AttentionPolicy(name, self.blocks + tuple(blocks))

    def is_full(self) -> bool:
        return not self.blocks

    def __str__(self) -> str:
        return self.name


def _mask0() -> AttentionPolicy:
    return AttentionPolicy(
        "mask0",
        (
            Block(("Q", "SEP1", "D", "SEP2"), "CLS"),
            Block("Q", "SEP2"),
            Block("D", "SEP1"),
            Block("SEP1", ("Q", "D", "SEP2")),
            Block("SEP2", ("Q", "SEP1", "D")),
        ),
    )


def full() -> AttentionPolicy:
    return AttentionPolicy("full")


def mask0() -> AttentionPolicy:
    return _mask0()


def mask1() -> AttentionPolicy:
    return _mask0().extend("mask1", Block("CLS", ("D", "SEP2")))


def mask2() -> AttentionPolicy:
    return mask1().extend("mask2", Block("D", "Q"))


def mask3(layer: int) -> AttentionPolicy:
    return mask2().extend(f"mask3-{layer}", Block("Q", "D", 0, layer))


def sparse_ce() -> AttentionPolicy:
    return AttentionPolicy("sparse_ce", (Block(("Q", "SEP1"), ("CLS", "D", "SEP2")),))


def prettr(layer: int) -> AttentionPolicy:
    return AttentionPolicy(
        f"prettr-{layer}",
        (
            Block(("CLS", "Q", "SEP1"), ("D", "SEP2"), 0, layer),
            Block(("D", "SEP2"), ("CLS", "Q", "SEP1"), 0, layer),
        ),
    )


_FIXED = {"full": full, "mask0": mask0, "mask1": mask1, "mask2": mask2, "sparse_ce": sparse_ce}
_LAYERED = {"mask3": mask3, "prettr": prettr}
POLICY_NAMES = tuple(_FIXED) + tuple(f"{k}-L" for k in _LAYERED)


def get_policy(spec: "str | dict | AttentionPolicy | None") -> AttentionPolicy:
    """Resolve ``'mask1'``, ``'mask3-4'``, ``'prettr-l6'``, a dict, or a policy into a policy."""
    if spec is None:
        return full()
    if isinstance(spec, AttentionPolicy):
        return spec
    if isinstance(spec, dict):
        return AttentionPolicy.from_dict(spec)
    key = re.sub(r"[\s_]|-(?=ce$)", "", str(spec).strip().lower()).replace("sparsece", "sparse_ce")
    if key in _FIXED:
        return _FIXED[key]()
    m = re.fullmatch(r"(mask3|prettr)-?l?(\d+)", key)
    if m:
        return _LAYERED[m.group(1)](int(m.group(2)))
    raise ValueError(
        f"unknown attention policy {spec!r}; expected one of {POLICY_NAMES} "
        "(L a layer number, e.g. 'mask3-4'), a dict, or an AttentionPolicy"
    )


def document_reaches_cls(policy: AttentionPolicy, num_layers: int) -> bool:
    """Whether, under ``policy``, information from D can reach ``[CLS]`` by the last layer (if not,
    every document of a query gets the same score)."""
    has_doc = np.zeros(NUM_SEGMENTS, dtype=bool)
    has_doc[segment_index("D")] = True
    for t in policy.table(num_layers):
        has_doc = has_doc | (t & has_doc[None, :]).any(axis=1)
    return bool(has_doc[segment_index("CLS")])


def layer_tables(policy: AttentionPolicy, num_layers: int) -> tuple[torch.Tensor, list[int]]:
    """Distinct per-layer tables ``[n, 5, 5]`` and, for each layer, the index of its table."""
    tables = policy.table(num_layers)
    distinct: list[np.ndarray] = []
    index: list[int] = []
    for t in tables:
        for i, d in enumerate(distinct):
            if np.array_equal(d, t):
                index.append(i)
                break
        else:
            distinct.append(t)
            index.append(len(distinct) - 1)
    return torch.from_numpy(np.stack(distinct)), index


def change_points(policy: AttentionPolicy, num_layers: int) -> list[tuple[int, int, np.ndarray]]:
    """``(first, last, table)`` for each run of layers sharing one table."""
    tables = policy.table(num_layers)
    runs: list[tuple[int, int, np.ndarray]] = []
    for layer, t in enumerate(tables):
        if runs and np.array_equal(runs[-1][2], t):
            runs[-1] = (runs[-1][0], layer, t)
        else:
            runs.append((layer, layer, t))
    return runs


def plot_policy(policy: "AttentionPolicy | str", num_layers: int = 12, path: str | None = None, ax_size: float = 2.2):
    """Draw the policy as 5×5 block matrices (the paper's Figure 2), one per run of layers.

    Returns the matplotlib figure; writes a PNG when ``path`` is given.
    """
    import matplotlib.pyplot as plt  # the caller's backend: inline in a notebook, a file or window elsewhere

    policy = get_policy(policy)
    runs = change_points(policy, num_layers)
    fig, axes = plt.subplots(1, len(runs), figsize=(ax_size * len(runs) + 0.4, ax_size + 0.8), squeeze=False)
    labels = ["[CLS]", "Q", "[SEP]₁", "D", "[SEP]₂"]
    for ax, (first, last, t) in zip(axes[0], runs):
        ax.imshow(np.where(t, 1.0, 0.0), cmap="Blues", vmin=-0.15, vmax=1.15)
        ax.set_xticks(range(NUM_SEGMENTS), labels, rotation=45, fontsize=8)
        ax.set_yticks(range(NUM_SEGMENTS), labels, fontsize=8)
        ax.set_xticks(np.arange(-0.5, NUM_SEGMENTS), minor=True)
        ax.set_yticks(np.arange(-0.5, NUM_SEGMENTS), minor=True)
        ax.grid(which="minor", color="white", linewidth=1.5)
        ax.tick_params(which="minor", length=0)
        title = f"layer {first}" if first == last else f"layers {first}–{last}"
        ax.set_title(title, fontsize=9)
    axes[0][0].set_ylabel("receiver (row)", fontsize=8)
    fig.suptitle(f"{policy.name}  (dark: may attend)", fontsize=10)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=130)
    return fig
