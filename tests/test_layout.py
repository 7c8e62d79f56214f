"""The layout of the package: the import contract holds (each layer imports only those below it, no
import circles), and the public API is importable from the package's root."""

import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_public_api_is_importable_from_the_root():
    import pyterrier_mice

    for name in [
        "AttentionPolicy",
        "Block",
        "get_policy",
        "plot_policy",
        "POLICY_NAMES",
        "MaskedCrossEncoderConfig",
        "MaskedCrossEncoderModel",
        "MiceConfig",
        "MiceModel",
        "ColBERTConfig",
        "ColBERTModel",
        "ColBERTReranker",
        "PreTTRConfig",
        "PreTTRModel",
        "PreTTRReranker",
        "Reranker",
        "BiEncoderReranker",
        "CrossEncoderReranker",
        "SparseCrossEncoderReranker",
        "MiceReranker",
        "MiceIndex",
        "MiceIndexError",
        "ScoreFusion",
        "load_reranker",
        "open_dataset",
    ]:
        assert hasattr(pyterrier_mice, name), name
    assert set(pyterrier_mice.__all__) >= {"MiceReranker", "MiceIndex", "ScoreFusion"}
    from pyterrier_mice.evaluation import paper_table, per_query, pool_repetitions, to_markdown  # noqa: F401


def test_importing_the_package_loads_no_torch():
    out = subprocess.run(
        ["python", "-c", "import sys, pyterrier_mice; print('torch' in sys.modules)"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT},
    )
    assert out.stdout.strip() == "False", out.stderr[-2000:]


def test_layers_import_only_downwards():
    lint = shutil.which("lint-imports") or pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    out = subprocess.run(
        [lint, "--config", os.path.join(ROOT, ".importlinter")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": ROOT},
    )
    assert out.returncode == 0, out.stdout[-3000:]
    assert "2 kept, 0 broken" in out.stdout
