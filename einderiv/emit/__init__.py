"""Back ends: printers (text, LaTeX, a notebook's Markdown) of the document models of
``einderiv.analysis``, and code generators (NumPy) for derivations.

Importing the package registers the notebook displays (:mod:`.notebook`) that
``Derivation._repr_markdown_`` / ``_repr_latex_`` use."""
from . import notebook

__all__ = ["notebook"]
