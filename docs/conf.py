"""Sphinx configuration for building pyterrier-mice's documentation on its own. The pages live in
the package, ``pyterrier_mice/pt_docs/``, as PyTerrier's extension documentation expects:

    sphinx-build -W -b html -c docs pyterrier_mice/pt_docs build/docs
"""

import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

project = "pyterrier-mice"
author = "pyterrier-mice developers"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.viewcode"]
root_doc = "index"
exclude_patterns = []
html_theme = "alabaster"
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # the signatures are long; the docstrings say what each argument is
autodoc_inherit_docstrings = False  # HF's own docstrings are not this package's to render
suppress_warnings = ["image.not_readable"] if os.environ.get("DOCS_SKIP_IMAGES") else []
