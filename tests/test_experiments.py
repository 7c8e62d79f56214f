"""The experiment scripts end to end on the tiny BEIR folder: the paper's table, saved runs reused
(and not reused once the checkpoint changes), the layer sweeps and every figure."""

import glob
import importlib.util
import json
import os

import pandas as pd
import pytest
import torch
from PIL import Image

from conftest import tiny_encoder
from pyterrier_mice import MiceModel, MiceReranker, load_reranker
from pyterrier_mice.evaluation import paper_table, per_query
from pyterrier_mice.evaluation.experiment import (
    BEIR13,
    BM25_HARD,
    checkpoint_fingerprint,
    dataset_label,
    open_dataset,
    paper_order,
    rerank_experiment,
    table_groups,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def script(name):
    spec = importlib.util.spec_from_file_location(f"exp_{name}", os.path.join(ROOT, "experiments", f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def checkpoints(tokenizer, tmp_path_factory):
    """A tiny HF cross-encoder and a MICE model saved as checkpoints."""
    d = tmp_path_factory.mktemp("ckpt")
    ce = d / "ce"
    tiny_encoder("bert", seed=1).save_pretrained(ce)
    tokenizer.save_pretrained(ce)
    mice = d / "mice"
    MiceModel.from_backbone(str(ce), 2, 1).save_pretrained(mice)
    tokenizer.save_pretrained(mice)
    return str(ce), str(mice)


def test_dataset_labels_groups_and_order():
    assert dataset_label("irds:beir/scifact/test") == "SF"
    assert dataset_label("irds:msmarco-passage/trec-dl-2019/judged") == "DL19"
    assert dataset_label("/data/beir/webis-touche2020/") == "T-v2"
    assert dataset_label("some/where/cranfield") == "cranfield"
    assert paper_order(["cranfield", "T-C", "SF", "MSM"]) == ["MSM", "SF", "T-C", "cranfield"]
    # an average needs two of its members; datasets that are not the paper's are in no paper average
    assert table_groups(["SF", "cranfield"]) == {}
    assert table_groups(["SF", "NFC", "cranfield"]) == {"OOD": BEIR13, "BM25-hard": BM25_HARD}
    assert table_groups(["DL19"]) == {} and list(table_groups(["DL19", "DL20"])) == ["ID"]
    assert table_groups(["SF"], {"mine": ["SF"]})["mine"] == ["SF"]


def test_open_dataset_errors(tmp_path):
    """(An ir_datasets collection offline: tests/test_offline.py.)"""
    with pytest.raises(FileNotFoundError, match="nope"):
        open_dataset(str(tmp_path / "nope"))


def test_rerank_table_saved_runs_and_changed_checkpoint(beir_folder, checkpoints, tmp_path, capsys):
    ce, mice = checkpoints
    rerank = script("rerank")
    args = [
        "--dataset",
        beir_folder,
        "--k",
        "5",
        "--work",
        str(tmp_path / "work"),
        "--model",
        f"CE={ce}",
        "--model",
        f"MICE={mice}",
        "--policy",
        "full",
        "mask1",
        "--latex",
    ]
    table = rerank.main(args)
    assert list(table.index) == ["BM25", "CE full", "CE mask1", "MICE"]
    assert list(table.columns) == [os.path.basename(beir_folder)]  # one dataset: no average repeating it
    out = capsys.readouterr().out
    assert "| BM25 |" in out and r"\begin{tabular}" in out and "running MICE" in out
    assert "same BM25 top-5 per query" in out and "not among the paper's datasets" in out
    runs = tmp_path / "work" / os.path.basename(beir_folder) / "runs"
    saved = sorted(os.listdir(runs))
    assert len([f for f in saved if f.endswith(".res.gz")]) == 4

    again = rerank.main(args)  # rerun: every run read back, none recomputed
    pd.testing.assert_frame_equal(table, again)
    assert "running" not in capsys.readouterr().out and sorted(os.listdir(runs)) == saved

    before = checkpoint_fingerprint(mice)  # a retrained checkpoint is never reused
    model = MiceModel.from_pretrained(mice)
    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    model.save_pretrained(mice)
    assert checkpoint_fingerprint(mice) != before
    rerank.main(args)
    assert "running MICE" in capsys.readouterr().out and len(os.listdir(runs)) == 10

    with pytest.raises(SystemExit):
        rerank.main(args + ["--baseline", "nope"])


def test_sweeps_and_figures(beir_folder, checkpoints, tmp_path):
    ce, _ = checkpoints
    sweep, figures = script("sweep"), script("figures")
    common = ["--from", ce, "--dataset", beir_folder, "--k", "5", "--work", str(tmp_path / "work")]
    rows = sweep.main(["first-layer", "--values", "1", "2", "3", "--csv", str(tmp_path / "f3.csv"), *common])
    models = [r["model"] for r in rows]
    assert models == ["BM25", "cross-encoder", "MICE-ℓ1+3", "MICE-ℓ2+2", "MICE-ℓ3+1"]
    rows = sweep.main(
        ["dropped-layers", "--first-layer", "1", "--values", "0", "2", "--csv", str(tmp_path / "f4.csv"), *common]
    )
    assert [r["dropped_layers"] for r in rows if r["x"] != ""] == [0, 2]
    rows = sweep.main(["mask3", "--values", "0", "4", "--csv", str(tmp_path / "m3.csv"), *common])
    assert [r["model"] for r in rows][2:] == ["Mask 3-ℓ0", "Mask 3-ℓ4"]
    with pytest.raises(SystemExit, match="does not fit"):
        sweep.main(["first-layer", "--values", "4", "--csv", str(tmp_path / "x.csv"), *common])
    with pytest.raises(SystemExit):  # a MICE checkpoint is not a source of variants
        sweep.main(
            [
                "first-layer",
                "--values",
                "1",
                "--csv",
                str(tmp_path / "x.csv"),
                *[checkpoints[1] if a == ce else a for a in common],
            ]
        )

    pngs = [
        figures.sweep(str(tmp_path / "f3.csv"), str(tmp_path / "f3.png"), xlabel="first interaction layer"),
        figures.sweep(str(tmp_path / "f4.csv"), str(tmp_path / "f4.png"), x="dropped_layers"),
        *figures.masks(str(tmp_path / "masks"), 4),
        figures.efficiency(
            os.path.join(ROOT, "benchmarks", "results", "efficiency_cpu_before.md"), str(tmp_path / "eff.png")
        ),
        figures.efficiency(
            os.path.join(ROOT, "pyterrier_mice", "pt_docs", "results", "efficiency_cpu.md"),  # FLOP columns
            str(tmp_path / "eff2.png"),
        ),
    ]
    names, _, _, memory = figures.efficiency_rows(
        os.path.join(ROOT, "pyterrier_mice", "pt_docs", "results", "efficiency_cpu.md")
    )
    assert names[0].startswith("Cross-encoder") and all(m > 100 for m in memory)  # peak RSS, not GFLOP / doc
    for png in pngs:
        with Image.open(png) as im:
            assert im.format == "PNG" and im.size[0] > 200
    with pytest.raises(ValueError, match="no rows for dataset"):
        figures.sweep(str(tmp_path / "f3.csv"), str(tmp_path / "x.png"), datasets=["MSM"])


def test_sweep_trains_each_variant_once_per_config(beir_folder, checkpoints, tmp_path):
    import yaml

    ce, _ = checkpoints
    cfg = {
        "steps": 1,
        "batch_size": 2,
        "warmup": 0,
        "lr": 1e-4,
        "loss": "bce",
        "device": "cpu",
        "log_every": 0,
        "save_every": 0,
        "model": {"type": "mice", "backbone": ce},
        "data": {"kind": "beir", "path": beir_folder, "split": "test", "bm25_k": 5},
        "eval": {"every": 0},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    sweep = script("sweep")
    args = [
        "first-layer",
        "--train",
        str(tmp_path / "c.yaml"),
        "--values",
        "2",
        "--interaction-layers",
        "1",
        "--dataset",
        beir_folder,
        "--k",
        "5",
        "--work",
        str(tmp_path / "work"),
        "--csv",
        str(tmp_path / "t.csv"),
    ]
    rows = sweep.main(args)
    assert [r["model"] for r in rows] == ["BM25", "MICE-ℓ2+1"] and rows[1]["family"] == "MICE (trained)"
    models = tmp_path / "work" / "sweep-models"
    (trained,) = os.listdir(models)
    stamp = os.stat(models / trained / "final" / "model.safetensors").st_mtime_ns
    sweep.main(args)  # same config: reused
    assert os.listdir(models) == [trained]
    assert os.stat(models / trained / "final" / "model.safetensors").st_mtime_ns == stamp
    sweep.main(args + ["--set", "seed=5"])  # another config: trained anew
    assert len(os.listdir(models)) == 2


def test_edited_corpus_is_indexed_and_run_again(beir_folder, checkpoints, tmp_path, capsys):
    import shutil

    folder = tmp_path / "coll"
    shutil.copytree(beir_folder, folder)
    rerank = script("rerank")
    args = ["--dataset", str(folder), "--k", "5", "--work", str(tmp_path / "work"), "--model", f"CE={checkpoints[0]}"]
    rerank.main(args)
    assert "running BM25" in capsys.readouterr().out
    rerank.main(args)
    assert "running" not in capsys.readouterr().out
    with open(folder / "corpus.jsonl", "a") as f:
        f.write('{"_id": "d13", "title": "wing", "text": "a new wing boundary layer report"}\n')
    rerank.main(args)
    out = capsys.readouterr().out
    assert "running BM25" in out and "running CE" in out
    assert len(os.listdir(tmp_path / "work" / "indexes")) == 2


def test_every_system_is_evaluated_at_the_same_depth(beir_folder, tmp_path):
    """An identity re-ranker of BM25's top 1 is BM25 at depth 1: same values, no mark (AP and nDCG)."""
    import pyterrier as pt

    ds = open_dataset(beir_folder)
    identity = pt.apply.doc_score(lambda row: row["score"])
    res = rerank_experiment(ds, {"identity": (identity, ("identity",))}, k=1, work=str(tmp_path / "w"), verbose=False)
    for measure in ("AP", "nDCG@10"):
        values = per_query(res, measure)
        pd.testing.assert_series_equal(values["identity"], values["BM25"], check_names=False)
        table = paper_table({ds.label: res}, measure, "BM25")
        assert not any(c.endswith(("↑", "↓")) for c in table.iloc[:, 0])


def test_bm25_alone_and_one_run_for_one_system_under_two_names(beir_folder, checkpoints, tmp_path, capsys):
    rerank = script("rerank")
    common = ["--dataset", beir_folder, "--k", "5", "--work", str(tmp_path / "work")]
    assert list(rerank.main(common).index) == ["BM25"]
    rerank.main(common + ["--model", f"CE={checkpoints[0]}"])
    assert "running CE" in capsys.readouterr().out
    rerank.main(common + ["--model", f"cross-encoder={checkpoints[0]}"])  # the same system, named otherwise
    assert "running" not in capsys.readouterr().out
    rerank.main(common + ["--model", f"CE={checkpoints[0]}", "--max-length", "16"])  # not the same system
    assert "running CE" in capsys.readouterr().out


def test_two_datasets_with_one_label_get_two_columns(beir_folder, checkpoints, tmp_path, capsys):
    """Two collections that would be labelled alike (here two folders named ``coll``; or
    ``irds:beir/scifact/test`` and a folder ``scifact``) are two columns of the table, never one."""
    import shutil

    for where in ("a", "b"):
        shutil.copytree(beir_folder, tmp_path / where / "coll")
    (tmp_path / "b" / "coll" / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n1\td5\t2\n")
    rerank = script("rerank")
    rerank.main(
        [
            "--dataset",
            str(tmp_path / "a" / "coll"),
            "--dataset",
            str(tmp_path / "b" / "coll"),
            "--k",
            "5",
            "--work",
            str(tmp_path / "work"),
            "--model",
            f"CE={checkpoints[0]}",
        ]
    )
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("| system"))
    cells = [c.strip() for c in header.strip("|").split("|")]
    assert len(cells) == 3 and cells[1] == "coll" and cells[2].startswith("coll ("), header


def _torchrun(nproc, args, env=None):
    import subprocess
    import sys

    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]),
        OMP_NUM_THREADS="1",
        **(env or {}),
    )
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        "pyterrier_mice.cli",
        "rerank",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)


def test_a_run_reranked_by_two_processes_equals_one_process(beir_folder, checkpoints, tmp_path):
    """``pyterrier-mice rerank`` under torchrun with 2 CPU processes (gloo): queries sharded over the
    ranks, each shard written whole, one merged run equal byte for byte to a single process's, which
    pt.Experiment reads as a system; a rerun skips the finished shards."""
    import pyterrier as pt
    from pyterrier.measures import nDCG

    common = [checkpoints[1], "--dataset", beir_folder, "--k", "5", "--shard-queries", "2"]
    one = _torchrun(1, [*common, "--out", str(tmp_path / "one.trec")])
    assert one.returncode == 0, one.stderr[-3000:]
    two = _torchrun(2, [*common, "--out", str(tmp_path / "two.trec")])
    assert two.returncode == 0, two.stderr[-3000:]
    assert "rank 1 of 2" in two.stdout and "rank 0 of 2" in two.stdout
    assert (tmp_path / "two.trec").read_text() == (tmp_path / "one.trec").read_text()
    shards = sorted(os.listdir(tmp_path / "two.trec.shards"))
    assert shards == ["identity.json"] + [f"shard-0000{i}-of-00003.trec" for i in range(3)]
    run = pt.io.read_results(str(tmp_path / "two.trec"))
    assert run["qid"].nunique() == 5 and run.groupby("qid").size().max() <= 5  # BM25 finds fewer for some
    ds = open_dataset(beir_folder)
    res = pt.Experiment([pt.Transformer.from_df(run)], ds.topics, ds.qrels, [nDCG @ 10], names=["merged"])
    assert 0 <= float(res["nDCG@10"].iloc[0]) <= 1
    again = _torchrun(2, [*common, "--out", str(tmp_path / "two.trec")])
    assert again.returncode == 0 and again.stdout.count("already done") == 2
    assert "0 shard(s) re-ranked" in again.stdout


def test_a_killed_rank_loses_only_its_unfinished_shard(beir_folder, checkpoints, tmp_path):
    """A rank killed while re-ranking leaves the shards it finished; the rerun re-ranks only the rest
    and merges the same run as a run never killed. Shards of another model are refused."""
    common = [checkpoints[1], "--dataset", beir_folder, "--k", "5", "--shard-queries", "1"]
    ref = _torchrun(1, [*common, "--out", str(tmp_path / "ref.trec")])
    assert ref.returncode == 0, ref.stderr[-3000:]
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]), OMP_NUM_THREADS="1")
    killed = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "tests", "kill_rerank_worker.py"),
            "2",
            "rerank",
            *common,
            "--out",
            str(tmp_path / "run.trec"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert killed.returncode == -9 and not (tmp_path / "run.trec").exists(), killed.stderr[-2000:]
    assert len([f for f in os.listdir(tmp_path / "run.trec.shards") if f.endswith(".trec")]) == 2
    again = _torchrun(1, [*common, "--out", str(tmp_path / "run.trec")])
    assert again.returncode == 0 and "3 shard(s) re-ranked, 2 already done" in again.stdout, again.stdout
    assert (tmp_path / "run.trec").read_text() == (tmp_path / "ref.trec").read_text()
    other = _torchrun(1, [checkpoints[0], *common[1:], "--out", str(tmp_path / "run.trec")])
    assert other.returncode != 0 and "holds shards of another run" in other.stdout + other.stderr


def test_ranks_wait_for_the_slowest_rank_as_long_as_asked(monkeypatch, tmp_path):
    """The process group waits ``wait_s`` (the CLI's ``--wait-hours``), not torch's 10–30 minute default
    that a rank done early with uneven shards of a large run would run past; a bad wait is one line."""
    import datetime

    import torch.distributed as dist

    from pyterrier_mice.evaluation import distributed

    seen = {}
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda backend, **kw: seen.update(backend=backend, **kw))
    monkeypatch.setattr(dist, "barrier", lambda: None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    cands = pd.DataFrame({"qid": ["1", "2"], "query": ["a", "b"], "docno": ["d1", "d2"], "text": ["x", "y"]})
    os.makedirs(str(tmp_path / "run.trec.shards"))
    with pytest.raises(FileNotFoundError):  # rank 0 (not run here) never wrote the identity; the group was started
        distributed.rerank_sharded(lambda df: df, cands, str(tmp_path / "run.trec"), {}, wait_s=7200)
    assert seen == {"backend": "gloo", "timeout": datetime.timedelta(hours=2)}
    with pytest.raises(ValueError, match="wait_s=0"):
        distributed.rerank_sharded(lambda df: df, cands, str(tmp_path / "run.trec"), {}, wait_s=0)


def test_every_cli_option_passes_through_torchrun_and_accelerate_launch():
    """``torchrun … -m pyterrier_mice.cli rerank --run X`` failed: torchrun read ``--run`` as an
    ambiguous abbreviation of its ``--run-path``. Every option of every command reaches the command
    unchanged, under both launchers."""
    import argparse

    from accelerate.commands.launch import launch_command_parser
    from torch.distributed.run import get_args_parser

    from pyterrier_mice.cli import build_parser

    def commands(parser, prefix=()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from commands(sub, (*prefix, name))
        yield prefix, [a.option_strings[0] for a in parser._actions if a.option_strings and a.dest != "help"]

    launchers = {
        "torchrun": (
            get_args_parser(),
            ["--standalone", "--nproc_per_node=2", "-m", "pyterrier_mice.cli"],
            "training_script_args",
        ),
        "accelerate launch": (
            launch_command_parser(),
            ["--num_processes=2", "-m", "pyterrier_mice.cli"],
            "training_script_args",
        ),
    }
    for launcher, (parser, head, dest) in launchers.items():
        for command, options in commands(build_parser()):
            for option in options:
                tail = [*command, option, "x"]
                try:
                    parsed = parser.parse_args([*head, *tail])
                except SystemExit:
                    raise AssertionError(f"{launcher} refuses `{' '.join(tail)}`") from None
                assert getattr(parsed, dest) == tail, (launcher, tail, getattr(parsed, dest))


@pytest.mark.minilm
@pytest.mark.slow
def test_recipes_trains_derives_and_scores_in_and_out_of_domain(minilm_path, beir_folder, tmp_path, monkeypatch):
    """experiments/recipes.py end to end at 2 steps a run: the cross-encoder and the MICE derived
    from it, the cosine and the fused teacher, each model fused, scored on the training collection's
    test split and on another collection's, marked against BM25 and against the teacher."""
    monkeypatch.syspath_prepend(os.path.join(ROOT, "experiments"))  # recipes.py imports its neighbour
    recipes = script("recipes")
    monkeypatch.setattr(recipes, "DOCS_FIGURES", str(tmp_path))
    out = str(tmp_path / "r")
    table = recipes.main(
        ["--dataset", "cranfield-mini", "--backbone", str(minilm_path), "--seeds", "1", "--recipes", "current",
         "--steps", "2", "--k", "5", "--set", "model.length_limit=48", "--set", "eval.k=5",
         "--derive-set", "model.doc_max_length=32", "--derive-set", "eval.k=5", "--test-on", beir_folder,
         "--work", str(tmp_path / "work"), "--out", out]
    )  # fmt: skip
    assert {recipes.COSINE, recipes.FUSED_TEACHER, "BM25", "CE, current recipe", "MICE from CE, current recipe"} <= set(
        table.index
    )
    assert "CE, current recipe + BM25" in table.index and "MICE from CE, current recipe + BM25" in table.index
    assert any(c.endswith("(out of domain)") for c in table.columns)
    text = open(out + ".md").read()
    assert "▲/▼ above/below MiniLM cosine (zero-shot)" in text and "fused teacher: at weight" in text
    tested = pd.read_csv(out + "_test.csv")
    assert set(tested["dataset"]) == {"cranfield-mini", os.path.basename(beir_folder)}
    p = pd.read_csv(out + "_significance.csv").set_index(["dataset", "system"])
    column = table.columns[0]  # the training collection's: its marks are where Holm's p is under 0.05
    for system, cell in table[column].items():
        row = p.loc[("cranfield-mini", system)]
        assert ("↑" in cell or "↓" in cell) == (row["Holm p vs BM25"] < 0.05)
        assert ("▲" in cell or "▼" in cell) == (row["Holm p vs teacher"] < 0.05)
        assert row["nDCG@10"] == pytest.approx(float(cell.rstrip("↑↓▲▼")), abs=0.05)


def test_prior_weight_refuses_a_name_that_labels_several_saved_runs(tmp_path):
    """experiments/prior_weight.py reads recipes.py's saved runs by name: a name that labels two saved
    runs (two systems, e.g. a recipe's model before and after it changed) is refused in one line,
    never read as whichever file came last."""
    import pyterrier as pt

    prior_weight = script("prior_weight")
    res = pd.DataFrame({"qid": ["1", "1"], "docno": ["a", "b"], "score": [2.0, 1.0], "rank": [0, 1]})
    for key, names in (("k1", ["CE#12"]), ("k2", ["CE#12", "CE, renamed#12"]), ("k3", ["BM25"])):
        pt.io.write_results(res, str(tmp_path / f"{key}.res.gz"))
        (tmp_path / f"{key}.json").write_text(json.dumps({"names": names}))
    found = prior_weight.saved_runs(str(tmp_path), ["BM25", "CE, renamed#12"])
    assert set(found) == {"BM25", "CE, renamed#12"} and len(found["BM25"]) == 2
    with pytest.raises(SystemExit, match=r"2 saved runs are named 'CE#12'.*k1.json.*k2.json"):
        prior_weight.saved_runs(str(tmp_path), ["BM25", "CE#12"])
    with pytest.raises(SystemExit, match=r"no saved run is named 'CE#13'"):
        prior_weight.saved_runs(str(tmp_path), ["CE#13"])


def test_recipes_trains_mice_from_the_bi_encoder_and_derives_nothing_from_it(minilm_path, tmp_path, monkeypatch):
    """recipes.py's ``mice-direct`` recipe trains MICE itself (configs/mice.yaml) from the starting
    bi-encoder, with the cosine kept beside it, and derives no MICE from it."""
    monkeypatch.syspath_prepend(os.path.join(ROOT, "experiments"))
    recipes = script("recipes")
    monkeypatch.setattr(recipes, "DOCS_FIGURES", str(tmp_path))
    table = recipes.main(
        ["--dataset", "cranfield-mini", "--backbone", str(minilm_path), "--seeds", "1", "--recipes", "mice-direct",
         "--steps", "2", "--k", "5", "--set", "model.length_limit=48", "--set", "eval.k=5",
         "--work", str(tmp_path / "work"), "--out", str(tmp_path / "r")]
    )  # fmt: skip
    name = recipes.RECIPES["mice-direct"][1]
    assert {name, f"{name} + BM25"} <= set(table.index)
    assert not any(system.startswith("MICE from") for system in table.index)
    final = tmp_path / "work" / "cranfield-mini" / "mice-direct-s1" / "final"
    reranker = load_reranker(str(final))
    assert isinstance(reranker, MiceReranker) and reranker.prior is not None  # the cosine kept beside it


@pytest.mark.parametrize(
    "script",
    sorted(
        os.path.relpath(p, ROOT)
        for folder in ("benchmarks", "experiments")
        for p in glob.glob(os.path.join(ROOT, folder, "*.py"))
    ),
)
def test_every_script_imports(script, monkeypatch):
    """Every benchmark and experiment script imports what it names (``benchmarks/pipeline.py`` still
    imported ``profiling`` from the package's top level after it moved, and failed before running)."""
    monkeypatch.syspath_prepend(os.path.dirname(os.path.join(ROOT, script)))  # a script imports its neighbours
    spec = importlib.util.spec_from_file_location(f"script_{os.path.basename(script)[:-3]}", os.path.join(ROOT, script))
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
