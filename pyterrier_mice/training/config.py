"""Training configuration: YAML ↔ dataclasses, with ``key.sub=value`` overrides, every value
coerced to its field's type and the whole config validated before any work starts.

Training layer: imports :mod:`pyterrier_mice.models` and training modules (never :mod:`.models`)."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

import yaml


#: the model types a training config can build (see :mod:`.models`)
MODEL_TYPES = ("cross-encoder", "mice", "colbert", "prettr")
#: ``data.teacher``'s value for the starting model itself, used as a bi-encoder
BACKBONE = "backbone"
#: the value of a size chosen for the collection by :func:`pyterrier_mice.training.sizing.resolve_auto`
AUTO = "auto"
#: the keys that take :data:`AUTO`
AUTO_KEYS = ("model.max_length", "model.doc_max_length", "steps", "warmup", "eval.every")


class ConfigError(ValueError):
    """An invalid training configuration (one line naming the key and what is expected)."""


@dataclasses.dataclass
class ModelConfig:
    """The model to train. MICE's own options are :class:`~pyterrier_mice.MiceConfig`'s, in the
    section ``mice`` (``model.mice.interaction: cross_first``), or, for short, at this level
    (``model.interaction: cross_first``); they are read as attributes too (``cfg.model.interaction``)."""

    type: str = "mice"  # cross-encoder | mice | colbert | prettr
    backbone: str = "microsoft/MiniLM-L12-H384-uncased"
    policy: str = "full"  # cross-encoder only
    mice: dict = dataclasses.field(default_factory=dict)  # mice: MiceConfig's options (validated by MiceConfig)
    split_layer: int = 4  # prettr
    doc_position_offset: int | None = None  # prettr, mice: document token j at position offset + j
    dim: int = 128  # colbert
    query_length: int = 32  # colbert
    doc_length: int = 180  # colbert
    input_form: str = "reference"  # colbert: standard | reference
    max_length: int | str | None = None  # cross-encoder / prettr joint pair length (auto: sized to the collection)
    query_max_length: int | None = None  # mice
    doc_max_length: int | str | None = None  # mice (auto: sized to the collection)
    length_limit: int | None = None  # auto lengths: at most this (None: as long as the backbone reads well)

    def __getattr__(self, name):  # a MICE option, read as an attribute: its value, or MiceConfig's default
        if name != "mice" and name in _mice_options():
            return self.__dict__.get("mice", {}).get(name, _mice_defaults()[name])
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def mice_options(self) -> dict:
        """MICE's options as set: the ``mice`` section, and this config's fields that are MICE options
        too (shared with another model type, e.g. ``doc_position_offset``)."""
        shared = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name in _mice_options()}
        return {**self.mice, **shared}

    def mice_config(self):
        """The :class:`~pyterrier_mice.MiceConfig` these options make (backbone aside): building it
        is validating them."""
        from ..models.mice import MiceConfig

        lexical = self.mice.get("lexical_bias")
        return MiceConfig(**self.mice_options(), special_token_ids=[0] if lexical else None)


def _mice_options() -> dict:
    from ..models.mice import MiceConfig

    return MiceConfig.option_types()


def _mice_defaults() -> dict:
    from ..models.mice import MiceConfig

    return MiceConfig.option_defaults()


@dataclasses.dataclass
class DataConfig:
    kind: str = "beir"  # beir | msmarco-teacher
    path: str = ""  # BEIR folder, or the teacher-score TSV
    split: str = "train"
    bm25_k: int = 100  # negatives mined from BM25 top-k (beir)
    negatives: int = 1  # negatives per positive
    teacher: str | None = None  # re-ranker checkpoint giving teacher scores (beir); "backbone": the
    #                                       starting model itself as a bi-encoder (a sentence-embedding backbone)
    teacher_max_length: int | None = None  # beir: the teacher's pair length (default: the student's lengths)
    teacher_cache: str | None = None  # folder of cached teacher scores, shareable by runs (None: output_dir/teacher)
    limit: int | None = None  # msmarco-teacher: first N triples (paper: 4M)
    pseudo_queries: int = 0  # beir + distillation: N more groups on pseudo-queries cut from the corpus
    pseudo_query_words: int | None = None  # their mean length in words, uniform in [w/2, 3w/2] (None: the
    #                                        mean length of the training queries)


@dataclasses.dataclass
class EvalConfig:
    path: str | None = None  # BEIR folder of the validation queries (default: data.path)
    split: str = "dev"  # a qrels split, or "holdout": a fraction of data.split's queries
    holdout: float = 0.2  # with split "holdout": the fraction held out from training
    k: int = 100  # re-rank BM25 top-k
    max_queries: int | None = None  # validate on at most this many queries (a seeded sample)
    measure: str = "RR@10"
    every: int | str = 10000  # steps between validations (0: never; auto: 4 in a run)
    batch_size: int = 64
    seed: int | None = None  # held-out queries and the validation sample (None: the training seed)


@dataclasses.dataclass
class TrainConfig:
    output_dir: str = "runs/train"
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    eval: EvalConfig = dataclasses.field(default_factory=EvalConfig)
    loss: str = "margin_mse"  # margin_mse | kl_div (distillation) | bce | infonce, or a sum: infonce+kl_div
    temperature: float = 1.0  # kl_div: the teacher's scores are divided by it (a bi-encoder's cosine: 0.05)
    steps: int | str = 125_000  # auto: as many as budget_tokens afford on this collection
    budget_tokens: int = 1_500_000  # steps: auto (pair tokens; 1.5M is about 20 min of MiniLM-L6 on 2 CPU cores)
    batch_size: int = 32  # groups (triples) per step
    lr: float = 7e-6
    weight_decay: float = 0.0
    warmup: int | str = 5_000  # auto: a tenth of the steps
    max_grad_norm: float = 1.0
    precision: str = "no"  # no | bf16 | fp16 (accelerate mixed precision)
    seed: int = 12
    save_every: int = 10_000  # steps between resumable checkpoints
    keep_checkpoint: bool = False  # keep the resumable checkpoint when the run ends (to continue it later)
    device: str | None = None  # None: accelerate's choice
    log_every: int = 100

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        """A validated config from a dict; values are coerced to the fields' types."""
        if not isinstance(d or {}, dict):
            raise ConfigError(f"a training config is a mapping of keys to values, got {type(d).__name__}")
        cfg = _build(cls, dict(d or {}), "")
        cfg.validate()
        return cfg

    @classmethod
    def from_yaml(cls, path: str, overrides: list[str] = (), values: dict | None = None) -> "TrainConfig":
        """The config of a YAML file, with ``values`` (typed, by dotted key: ``{"model.type": "mice"}``)
        set over it, then ``overrides`` (``KEY=VALUE`` strings, as ``--set`` gives them: YAML values)."""
        try:
            with open(path, encoding="utf8") as f:
                d = yaml.safe_load(f) or {}
        except FileNotFoundError:
            raise ConfigError(f"training config {path!r} does not exist") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
        for key, value in (values or {}).items():
            _set(d, key, value, f"{key}={value!r}")
        for item in overrides:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set lr=1e-4 or --set model.type=mice")
            _set(d, key, yaml.safe_load(value) if value != "" else None, f"--set {item!r}")
        return cls.from_dict(d)

    def auto_fields(self) -> list[str]:
        """The keys of :data:`AUTO_KEYS` set to ``auto`` (to be sized by ``sizing.resolve_auto``)."""
        return [key for key in AUTO_KEYS if self.get(key) == AUTO]

    def get(self, key: str):
        """The value at a dotted key (``model.max_length``)."""
        node = self
        for part in key.split("."):
            node = getattr(node, part)
        return node

    def validate(self) -> None:
        """Check the choices and ranges of the whole config (raises :class:`ConfigError`)."""
        for key in AUTO_KEYS:
            value = self.get(key)
            if isinstance(value, str) and value != AUTO:
                raise ConfigError(f"{key}={value!r} is not a valid int (or 'auto': sized to the collection)")
        from .losses import loss_parts

        try:
            loss_parts(self.loss)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        checks = [
            ("model.type", self.model.type, MODEL_TYPES),
            ("data.kind", self.data.kind, ("beir", "msmarco-teacher")),
            ("precision", self.precision, ("no", "bf16", "fp16")),
            ("model.input_form", self.model.input_form, ("standard", "reference")),
        ]
        for key, value, allowed in checks:
            if value not in allowed:
                raise ConfigError(f"{key}={value!r}; expected one of {list(allowed)}")
        if self.model.type == "mice":
            self._check_mice_options()
        try:
            import ir_measures

            ir_measures.parse_measure(self.eval.measure)
        except Exception:
            raise ConfigError(
                f"eval.measure={self.eval.measure!r} is not a measure ir_measures can parse "
                "(e.g. nDCG@10, RR@10, AP, R@100)"
            ) from None
        for key, value, low in [
            ("steps", self.steps, 1),
            ("batch_size", self.batch_size, 1),
            ("lr", self.lr, 0),
            ("temperature", self.temperature, 1e-6),
            ("warmup", self.warmup, 0),
            ("eval.k", self.eval.k, 1),
            ("data.negatives", self.data.negatives, 1),
            ("eval.every", self.eval.every, 0),
            ("budget_tokens", self.budget_tokens, 1),
        ]:
            if value != AUTO and value < low:
                raise ConfigError(f"{key}={value!r} must be ≥ {low}")
        if self.data.pseudo_queries < 0 or (self.data.pseudo_query_words or 2) < 2:
            raise ConfigError(
                f"data.pseudo_queries={self.data.pseudo_queries!r} must be ≥ 0 and "
                f"data.pseudo_query_words={self.data.pseudo_query_words!r} ≥ 2"
            )
        from .losses import DISTILLATION_LOSSES

        if self.data.pseudo_queries and (self.loss not in DISTILLATION_LOSSES or self.data.kind != "beir"):
            raise ConfigError(
                f"data.pseudo_queries={self.data.pseudo_queries} needs distillation on a BEIR folder "
                f"(loss=margin_mse or kl_div, data.kind=beir, data.teacher=…): pseudo-queries have no "
                f"relevance labels; got loss={self.loss!r}, data.kind={self.data.kind!r}"
            )
        if not 0 < self.eval.holdout < 1:
            raise ConfigError(f"eval.holdout={self.eval.holdout!r} must be a fraction between 0 and 1")

    def _check_mice_options(self) -> None:
        """MICE's options and their combinations: :class:`MiceConfig` checks them (backbone aside);
        the section then holds every option as resolved."""
        try:
            options = self.model.mice_config().options()
        except ValueError as e:
            raise ConfigError(f"model: {str(e).removeprefix('MiceConfig: ')}") from None
        fields = {f.name for f in dataclasses.fields(ModelConfig)}
        self.model.mice = {k: v for k, v in options.items() if k not in fields}

    def check_data(self) -> None:
        """What the data preparation needs (checked by ``run`` before any work)."""
        from .losses import needs_teacher

        if needs_teacher(self.loss) and self.data.kind == "beir" and not self.data.teacher:
            raise ConfigError(
                f"loss {self.loss!r} needs teacher scores: set data.teacher=CHECKPOINT (or use loss=infonce / loss=bce)"
            )
        if self.data.kind == "beir" and not self.data.path:
            raise ConfigError("data.path is empty: set it to a BEIR-layout folder")
        if self.data.kind == "beir":
            from ..evaluation.datasets import BeirFolder

            splits = BeirFolder(self.data.path).splits()
            if self.data.split not in splits:
                raise ConfigError(
                    f"data.split={self.data.split!r}: {self.data.path} has no qrels/{self.data.split}.tsv "
                    f"(its splits: {splits}); set data.split to one you will not evaluate on"
                )
            if self.data.teacher:
                from ..models.bi_encoder import is_bi_encoder
                from ..models.checkpoints import has_classification_head

                teacher = self.teacher_path
                if self.data.teacher == BACKBONE and not is_bi_encoder(teacher):
                    raise ConfigError(
                        f"data.teacher: {BACKBONE!r} distils the starting model used as a bi-encoder, but "
                        f"model.backbone {teacher!r} is no sentence-embedding model (no sentence-"
                        "transformers modules.json); set data.teacher to a cross-encoder or bi-encoder, "
                        "or train without a teacher (loss: infonce)"
                    )
                if not has_classification_head(teacher) and not is_bi_encoder(teacher):
                    raise ConfigError(
                        f"data.teacher: {teacher!r} {NO_HEAD}; set it to a trained "
                        "cross-encoder, or a sentence-embedding model in sentence-transformers' layout"
                    )

    @property
    def teacher_path(self) -> str | None:
        """The teacher's checkpoint (``data.teacher``, with ``backbone`` meaning ``model.backbone``)."""
        return self.model.backbone if self.data.teacher == BACKBONE else self.data.teacher

    @property
    def eval_seed(self) -> int:
        """The seed of the held-out queries and the validation sample."""
        return self.seed if self.eval.seed is None else self.eval.seed

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


#: why a base encoder cannot teach or be derived from
NO_HEAD = (
    "has no classification head (a base encoder, not a cross-encoder): its scores would be random, "
    "and a student would learn them"
)

_SECTIONS = {"model": ModelConfig, "data": DataConfig, "eval": EvalConfig}


def override_keys(overrides: list[str]) -> set[str]:
    """The dotted keys ``KEY=VALUE`` overrides set, MICE's options under one spelling (``model.X``,
    whether written ``model.X`` or ``model.mice.X``)."""
    return {item.partition("=")[0].replace("model.mice.", "model.", 1) for item in overrides}


def _set(d: dict, key: str, value, said: str) -> None:
    """Set the dotted ``key`` of the config dict ``d`` (``said``: how the user wrote it, for errors)."""
    node = d
    *parents, leaf = key.split(".")
    for i, p in enumerate(parents):
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{said}: {'.'.join(parents[: i + 1])!r} is a value, not a section")
    if isinstance(node.get(leaf), dict) or (not parents and leaf in _SECTIONS):
        raise ConfigError(
            f"{said}: {key!r} is a section; set one of its keys, e.g. "
            f"--set {key}.{dataclasses.fields(_SECTIONS.get(leaf, ModelConfig))[0].name}=…"
        )
    fields = {f.name for f in dataclasses.fields(ModelConfig)}
    if parents == ["model"] and isinstance(node.get("mice"), dict) and leaf in set(_mice_options()) - fields:
        node = node["mice"]  # a MICE option written short, over a config that has the section
    elif parents == ["model", "mice"]:
        d["model"].pop(leaf, None)  # written in the section, over a config that has it short: the later wins
    node[leaf] = value


def _build(klass, d: dict, prefix: str):
    """``klass(**d)`` with unknown keys refused and every value coerced to its field's type."""
    fields = {f.name: f for f in dataclasses.fields(klass)}
    if klass is ModelConfig:
        d = _with_mice_section(d, set(fields))
    unknown = sorted(set(d) - set(fields))
    if unknown:
        where = f"in '{prefix[:-1]}'" if prefix else "in the training config"
        more = f"; MICE's options: {sorted(_mice_options())}" if klass is ModelConfig else ""
        raise ConfigError(f"unknown key(s) {where}: {unknown}; known: {sorted(fields)}{more}")
    hints = typing.get_type_hints(klass)
    values = {}
    for name, value in d.items():
        if klass is ModelConfig and name == "mice":
            values[name] = value  # gathered and coerced by _with_mice_section
        elif name in _SECTIONS and klass is TrainConfig:
            if value is not None and not isinstance(value, dict):
                raise ConfigError(f"{name!r} is a section of keys (e.g. {name}.type: …), got {value!r}")
            values[name] = _build(_SECTIONS[name], dict(value or {}), f"{name}.")
        else:
            values[name] = _coerce(value, hints[name], prefix + name)
    return klass(**values)


def _with_mice_section(d: dict, fields: set[str]) -> dict:
    """``model``'s keys with MICE's options (``model.mice.X``, or ``model.X`` for short) gathered in
    its ``mice`` section, each coerced to its type in :class:`MiceConfig`."""
    options = {k: v for k, v in _mice_options().items() if k not in fields}  # a shared one is a field
    section = d.get("mice") or {}
    if not isinstance(section, dict):
        raise ConfigError(
            f"'model.mice' is a section of MICE's options (e.g. model.mice.interaction: …), got {section!r}"
        )
    unknown = sorted(set(section) - set(options))
    if unknown:
        raise ConfigError(f"unknown key(s) in 'model.mice': {unknown}; MICE's options: {sorted(options)}")
    out = {k: v for k, v in d.items() if k != "mice" and k not in options}
    for key in set(d) - set(out) - {"mice"}:
        if key in section and section[key] != d[key]:
            raise ConfigError(f"model.{key}={d[key]!r} and model.mice.{key}={section[key]!r}: set it once")
        section = {**section, key: d[key]}
    out["mice"] = {k: _coerce(v, options[k], f"model.{k}") for k, v in section.items()}
    return out


def _coerce(value, hint, key: str):
    """``value`` as ``hint`` (int, float, str, bool, or ``X | None``); a clear error otherwise."""
    options = (
        typing.get_args(hint)
        if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union
        else (hint,)
    )
    if value is None:
        if type(None) in options:
            return None
        raise ConfigError(f"{key} must be set (a {getattr(options[0], '__name__', options[0])})")
    for t in (o for o in options if o is not type(None)):
        if typing.get_origin(t) is typing.Literal:
            allowed = typing.get_args(t)
            if value in allowed or str(value) in allowed:
                return value if value in allowed else str(value)
            continue
        if t is bool:
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("true", "false", "yes", "no", "1", "0"):
                return str(value).lower() in ("true", "yes", "1")
        elif t is int:
            if isinstance(value, bool):
                continue
            if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
                return int(value)
            try:
                f = float(str(value).replace("_", ""))
                if f.is_integer():
                    return int(f)
            except ValueError:
                pass
        elif t is float:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
            try:
                return float(str(value))
            except ValueError:
                pass
        elif t is str:
            if isinstance(value, (str, int, float)) and not isinstance(value, bool):
                return str(value)
    choices = [a for o in options if typing.get_origin(o) is typing.Literal for a in typing.get_args(o)]
    if choices:
        raise ConfigError(f"{key}={value!r} is not one of {tuple(choices)}")
    names = " or ".join(o.__name__ for o in options if o is not type(None))
    raise ConfigError(f"{key}={value!r} is not a valid {names}")
