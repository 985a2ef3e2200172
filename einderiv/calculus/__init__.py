"""Calculus: the derivative rule table (``diff``), simplification (``simplify``), the
scalar functions and objectives SymPy differentiates (``functions``, ``objectives``),
and the network-level chain rule with named intermediates (``derive``).
"""
