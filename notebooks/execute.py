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


class PeakMemory(threading.Thread):
    """Samples a process tree's resident memory until stopped; ``peak`` in bytes."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak, self.running = pid, 0, True

    def run(self):
        while self.running:
            try:
                root = psutil.Process(self.pid)
                rss = sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
                self.peak = max(self.peak, rss)
            except psutil.Error:
                pass
            time.sleep(0.5)


def execute(path: str) -> tuple[float, int]:
    """Run the notebook at ``path`` in place; its wall seconds and its kernel's peak memory (bytes)."""
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=3600, kernel_name="python3", resources={"metadata": {"path": HERE}})
    start = time.time()
    with client.setup_kernel():
        sampler = PeakMemory(client.km.provisioner.process.pid)
        sampler.start()
        try:
            client.execute(reset_kc=False)
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
