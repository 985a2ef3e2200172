"""Back ends: printers (text, LaTeX) and code generators (NumPy) for derivations."""
