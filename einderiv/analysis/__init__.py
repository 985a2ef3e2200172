"""Analysis: what a derivation means, as data — outer-product factors (``factor``),
the per-block structure report (``structure``), families written once (``fold``) and
the general form of a layer template (``template``, with labels relative to anchors in
``anchors`` and its cases' conditions in ``conditions``).  Nothing here imports ``emit``.
"""
