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


def test_prefetch_needs_an_ir_datasets_id():
    with pytest.raises(ValueError, match="a local folder needs nothing"):
        classroom.prefetch_dataset("cranfield")


def test_defaults_are_what_the_full_tutorial_reads():
    from pyterrier_mice import tutorial

    full = tutorial.setting("full")
    assert {full.cross_encoder, full.backbone} <= set(classroom.MODELS)
    assert full.dataset in classroom.DATASETS
