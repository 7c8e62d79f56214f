"""Layer 2, checkpoint formats of other code read into this package's models: the MICE authors'
``xpm_torch`` folders, their older and newer architectures (:mod:`.xpm_layout` gives the files).
Importing this layer lets ``MiceModel.from_pretrained`` read them.

Imports only :mod:`pyterrier_mice.models`."""

from ..models.checkpoints import register_checkpoint_reader
from .authors import find_authors_checkpoint, load_authors_mice, read_definition
from .xpm_layout import AuthorsCheckpointError

__all__ = [
    "AuthorsCheckpointError",
    "find_authors_checkpoint",
    "load_authors_mice",
    "read_authors_mice",
    "read_definition",
]


def read_authors_mice(name_or_path, **kwargs):
    """The MICE model of the authors' checkpoint at ``name_or_path``, or None when it is not one."""
    folder = find_authors_checkpoint(name_or_path)
    return None if folder is None else load_authors_mice(folder, **kwargs)[0]


register_checkpoint_reader("mice", read_authors_mice)
