"""Execute every tutorial notebook in place (nbclient), so that the committed outputs come from a real run.

    python notebooks/execute.py                       # the offline setting with its default budgets
    MICE_TUTORIAL=full python notebooks/execute.py    # the full setting (needs internet)

The setting is read from the environment as the notebooks read it (see ``pyterrier_mice.tutorial``);
each notebook's first code cell prints which one produced its outputs. Notebooks run in teaching
order and share one work folder, so later ones reuse the models the earlier ones trained. Each
notebook's wall time and its kernel's peak memory are written at its top (the line that starts
``**Time and memory**``), measured by this run: what a class can expect.
"""

import os
import re
import sys
import threading
import time

import nbclient
import nbformat
import psutil

HERE = os.path.dirname(os.path.abspath(__file__))
TIME_AND_MEMORY = re.compile(r"^\*\*Time and memory\*\*.*$", re.M)
CURSOR_MOVES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # what nested progress bars write to move between lines


class PeakMemory(threading.Thread):
    """Samples the resident memory of this process's children (a notebook's kernel and what it starts)
    until stopped; ``peak`` in bytes."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak, self.running = 0, True

    def run(self):
        while self.running:
            try:
                rss = sum(p.memory_info().rss for p in psutil.Process().children(recursive=True))
                self.peak = max(self.peak, rss)
            except psutil.Error:
                pass
            time.sleep(0.5)


def coalesce_streams(nb) -> None:
    """Each cell's consecutive outputs of one stream merged, and each line left as a terminal shows it:
    a progress bar's last state, not each of its redraws."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        merged = []
        for out in cell.get("outputs", []):
            if (
                out.output_type == "stream"
                and merged
                and merged[-1].output_type == "stream"
                and merged[-1].name == out.name
            ):
                merged[-1].text += out.text
            else:
                merged.append(out)
        for out in merged:
            if out.output_type == "stream":
                lines = [line.rsplit("\r", 1) for line in CURSOR_MOVES.sub("", out.text).split("\n")]
                out.text = "\n".join(parts[-1] for parts in lines if len(parts) == 1 or parts[-1].strip())
        cell.outputs = [o for o in merged if o.output_type != "stream" or o.text.strip()]


def execute(path: str) -> tuple[float, int]:
    """Run the notebook at ``path`` in place; its wall seconds and its kernel's peak memory (bytes)."""
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=3600, kernel_name="python3", resources={"metadata": {"path": HERE}})
    start = time.time()
    sampler = PeakMemory()
    sampler.start()
    try:
        client.execute()
    finally:
        sampler.running = False
    took = time.time() - start
    line = (
        f"**Time and memory**: about {max(1, round(took / 60))} min on 2 CPU cores in the offline setting, "
        f"{sampler.peak / 2**30:.1f} GB of memory at most (measured by `notebooks/execute.py`; models the "
        "notebooks before this one trained are reused)."
    )
    first = nb.cells[0]
    first.source = (
        TIME_AND_MEMORY.sub(line, first.source) if TIME_AND_MEMORY.search(first.source) else f"{first.source}\n\n{line}"
    )
    coalesce_streams(nb)
    nbformat.write(nb, path)
    return took, sampler.peak


def main(names=None) -> int:
    names = names or sorted(f for f in os.listdir(HERE) if f.endswith(".ipynb"))
    for name in names:
        print(f"executing {name} ...", flush=True)
        took, peak = execute(os.path.join(HERE, os.path.basename(name)))
        print(f"  done in {took:.0f} s, {peak / 2**30:.1f} GB at most", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
