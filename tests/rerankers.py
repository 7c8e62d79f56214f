"""Factories for every re-ranker of the package over tiny models, for the shared contract suite."""

import os

from pyterrier_mice import CrossEncoderReranker, MaskedCrossEncoderModel

from conftest import tiny_encoder


def _save(model, tokenizer, path):
    if not os.path.exists(os.path.join(path, "config.json")):
        model.save_pretrained(path)
        tokenizer.save_pretrained(path)
    return path


def cross_encoder(kind, policy):
    def make(tokenizer, root, **kw):
        path = os.path.join(root, f"ce-{kind}")
        _save(MaskedCrossEncoderModel.from_encoder(tiny_encoder(kind), tokenizer), tokenizer, path)
        return CrossEncoderReranker.from_pretrained(path, policy, **kw)

    return make


FACTORIES = {
    "ce-full-bert": cross_encoder("bert", "full"),
    "ce-mask1-modernbert": cross_encoder("modernbert", "mask1"),
    "ce-sparse-bert": cross_encoder("bert", "sparse_ce"),
}


def mice(kind, **kw):
    def make(tokenizer, root, **rkw):
        import torch
        from pyterrier_mice import MiceModel, MiceReranker

        path = os.path.join(root, f"mice-{kind}")
        torch.manual_seed(0)
        _save(MiceModel.from_encoder(tiny_encoder(kind, num_hidden_layers=6), tokenizer, 2, 2, **kw), tokenizer, path)
        return MiceReranker.from_pretrained(path, **rkw)

    return make


FACTORIES.update(
    {
        "mice-bert": mice("bert"),
        "mice-modernbert": mice("modernbert"),
    }
)


def colbert(kind, form):
    def make(tokenizer, root, **rkw):
        import torch
        from pyterrier_mice import ColBERTModel, ColBERTReranker

        path = os.path.join(root, f"colbert-{kind}-{form}")
        torch.manual_seed(0)
        _save(
            ColBERTModel.from_encoder(
                tiny_encoder(kind), tokenizer, dim=16, query_max_length=12, doc_max_length=40, input_form=form
            ),
            tokenizer,
            path,
        )
        return ColBERTReranker.from_pretrained(path, **rkw)

    return make


FACTORIES.update(
    {
        "colbert-standard-bert": colbert("bert", "standard"),
        "colbert-reference-modernbert": colbert("modernbert", "reference"),
    }
)


def prettr(kind):
    def make(tokenizer, root, **rkw):
        import torch
        from pyterrier_mice import PreTTRModel, PreTTRReranker

        path = os.path.join(root, f"prettr-{kind}")
        torch.manual_seed(0)
        _save(PreTTRModel.from_encoder(tiny_encoder(kind), tokenizer, 2, doc_position_offset=16), tokenizer, path)
        return PreTTRReranker.from_pretrained(path, **rkw)

    return make


def sparse_ce(tokenizer, root, **kw):
    from pyterrier_mice import SparseCrossEncoderReranker

    path = os.path.join(root, "ce-bert")
    _save(MaskedCrossEncoderModel.from_encoder(tiny_encoder("bert"), tokenizer), tokenizer, path)
    return SparseCrossEncoderReranker.from_pretrained(path, **kw)


FACTORIES.update(
    {
        "prettr-split-bert": prettr("bert"),
        "prettr-split-modernbert": prettr("modernbert"),
        "sparse-ce-named": sparse_ce,
    }
)


def bi_encoder(tokenizer, root, **kw):
    from pyterrier_mice import BiEncoderReranker
    from test_bi_encoder import _tiny

    import pathlib

    path = pathlib.Path(root) / "bi-encoder"
    if not path.exists():
        _tiny(path, tokenizer)
    return BiEncoderReranker.from_pretrained(str(path), **kw)


FACTORIES["bi-encoder"] = bi_encoder
