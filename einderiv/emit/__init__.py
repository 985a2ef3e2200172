"""Back ends: printers (text, LaTeX) of the document models of ``einderiv.analysis``, and code
generators (NumPy) for derivations."""
