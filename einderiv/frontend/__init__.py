"""Front end: text → checked :class:`~einderiv.frontend.network.Network`.

``parse`` (Lark grammar → syntax tree), ``check`` (names, the summation convention,
sizes → IR), ``families`` (unrolling ``for t = 1..T``), ``network`` (the checked form).
"""
