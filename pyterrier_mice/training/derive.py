"""The recipe of ``pyterrier-mice derive``: MICE initialised from a cross-encoder (its head kept)
and distilled from it, in either form, sized to the source and to the collection."""

from __future__ import annotations

import os
import re

#: the two MICE architectures ``derive`` can target (``--form``), as config overrides
FORMS = {
    "older": {"model.interaction": "sequential", "model.cls_cross_attention": "mean"},
    "newer": {"model.interaction": "cross_first", "model.cls_cross_attention": "attend"},
}
FORMS_HELP = {
    "older": "the paper's (query self-attention, then cross-attention; [CLS] reads the mean of the document's values)",
    "newer": "the authors' newer (cross-attention first, then self-attention; [CLS] reads the document "
    "like any query token)",
}
#: the form ``derive`` builds unless told (the one that kept more of its teacher on Cranfield)
DEFAULT_FORM = "newer"


def derive_config(args) -> tuple[str, list[str], dict]:
    """The recipe, the user's overrides and derive's own values (typed, by dotted key) of ``derive``
    (``args``: source, data, config, out, overrides): MICE initialised from SOURCE and distilled
    from it (MarginMSE) on a BEIR folder, or from the MS MARCO teacher file. For
    ``TrainConfig.from_yaml(*derive_config(args))``: the user's ``--set`` wins over derive's values."""
    from ..models.checkpoints import has_classification_head
    from ..models.checkpoints import NO_HEAD
    from ..models.prior import saved_prior
    from ..evaluation.datasets import dataset_path

    configs = os.path.join(os.path.dirname(os.path.dirname(__file__)), "configs")
    args.data = dataset_path(args.data)
    folder = os.path.isdir(args.data)
    if not folder and not os.path.isfile(args.data):
        raise FileNotFoundError(f"--data {args.data!r} does not exist (a BEIR-layout folder or the teacher TSV)")
    if not has_classification_head(args.source):
        raise ValueError(
            f"{args.source!r} {NO_HEAD}; derive from a trained cross-encoder (`pyterrier-mice train "
            "configs/cranfield_ce.yaml` trains one), or train MICE from the base encoder with "
            "configs/cranfield_mice.yaml"
        )
    config = args.config or os.path.join(
        configs, "cranfield_mice_derived.yaml" if folder else "paper_mice_l4_3_derived.yaml"
    )
    name = re.sub(r"[^A-Za-z0-9.+-]+", "_", "-".join(os.path.normpath(args.source).split(os.sep)[-2:])).strip("_")
    # the form: the one asked for, else the default recipe's (a config of the user's is taken as it is)
    form = getattr(args, "form", None) or (None if args.config else DEFAULT_FORM)
    values = {
        "model.backbone": args.source,
        "data.path": args.data,
        "data.kind": "beir" if folder else "msmarco-teacher",
        "loss": "margin_mse",
        "output_dir": args.out or os.path.join("runs", name + "-mice"),
        **FORMS.get(form, {}),
    }
    if form:
        print(f"derive: the {form} MICE form ({FORMS_HELP[form]}; --form to change)", flush=True)
    kept = saved_prior(args.source)
    if kept is not None:  # the source's prior, kept: MICE learns the correction the cross-encoder learnt
        values["model.prior"], values["model.prior_scale"] = kept
    if folder:
        values["data.teacher"] = args.source
        if not args.config:
            values.update(derived_depth(args.source, args.overrides))
            values.update(derived_doc_length(args.source, args.data, args.overrides))
    return config, list(args.overrides), values


def default_first_layer(num_layers: int) -> int:
    """ℓ* of the default recipe: a third of the source's layers, rounded, at least 1 (ℓ4 of 12)."""
    return max(1, round(num_layers / 3))


def derived_depth(source: str, overrides: list[str]) -> dict:
    """The default recipe's depth for SOURCE: ℓ* a third of its layers (rounded, at least 1; the
    paper's ℓ4 of 12) and every layer above ℓ* kept, since the cross-encoder's head was trained on
    its last layer. Nothing when the user sets the depth."""
    from ..models.checkpoints import encoder_num_layers
    from .config import override_keys

    if override_keys(overrides) & {"model.first_interaction_layer", "model.interaction_layers"}:
        return {}
    n = encoder_num_layers(source)
    if n < 2:
        raise ValueError(f"{source!r} has {n} layer(s): MICE needs at least 2 (one apart, one to interact)")
    first = default_first_layer(n)
    print(
        f"derive: MICE-ℓ{first}+{n - first} from a {n}-layer cross-encoder (ℓ* = a third of the layers, "
        "every layer above it kept; set model.first_interaction_layer / model.interaction_layers to change)",
        flush=True,
    )
    return {"model.first_interaction_layer": first, "model.interaction_layers": n - first}


def derived_doc_length(source: str, folder: str, overrides: list[str]) -> dict:
    """The default recipe's document length on FOLDER: long enough for 95% of its documents in
    SOURCE's tokens (``[CLS]`` and ``[SEP]`` included; at most the first 5,000 documents are
    read), rounded up to a multiple of 32, and never longer than SOURCE reads well (the length a
    checkpoint of this package was trained at, else its position limit). Cutting documents the
    cross-encoder reads whole would cost MICE what the cross-encoder ranks on. Nothing when the
    user sets it."""
    from ..models.checkpoints import load_tokenizer, readable_length
    from .config import override_keys
    from .sizing import doc_length

    if "model.doc_max_length" in override_keys(overrides):
        return {}
    length, reason = doc_length(load_tokenizer(source), folder, readable_length(source), "the source")
    print(
        f"derive: documents up to {length} tokens ({reason}; set model.doc_max_length to change: "
        "shorter trains and re-ranks faster, and cuts more)",
        flush=True,
    )
    return {"model.doc_max_length": length}
