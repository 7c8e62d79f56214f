"""Execute every tutorial notebook in place (nbclient), so that the committed outputs come from a real run.

    python notebooks/execute.py                       # the offline setting with its default budgets
    MICE_TUTORIAL=full python notebooks/execute.py    # the full setting (needs internet)

The setting is read from the environment as the notebooks read it (see ``pyterrier_mice.tutorial``);
each notebook's first code cell prints which one produced its outputs. Notebooks run in teaching
order and share one work folder, so later ones reuse the models the earlier ones trained.
"""
import os
import sys
import time

import nbclient
import nbformat

HERE = os.path.dirname(os.path.abspath(__file__))


def main(names=None) -> int:
    names = names or sorted(f for f in os.listdir(HERE) if f.endswith(".ipynb"))
    for name in names:
        path = os.path.join(HERE, os.path.basename(name))
        nb = nbformat.read(path, as_version=4)
        start = time.time()
        print(f"executing {name} ...", flush=True)
        nbclient.NotebookClient(nb, timeout=3600, kernel_name="python3",
                                resources={"metadata": {"path": HERE}}).execute()
        nbformat.write(nb, path)
        print(f"  done in {time.time() - start:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
