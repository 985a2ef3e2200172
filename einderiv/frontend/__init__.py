"""Front end: text → checked :class:`~einderiv.frontend.network.Network` (or a layer template).

``parse`` (Lark grammar → ``syntax`` tree; ``read`` a file), ``check`` (declarations,
names, dependency order, the objective), ``summation`` (the summation convention → IR
of each definition), ``context`` (what the checker knows while it reads), ``families``
(unrolling ``for t = 1..T``), ``builtins``/``objectives`` (the notation's functions),
``network`` (the checked form), ``load`` (a file → a network or a layer ``Template``).
"""
