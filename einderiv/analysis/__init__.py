"""Analysis: what a derivation means, as data — outer-product factors (``factor``),
the per-block structure report (``structure``), families written once (``fold``), the
general form of a layer template (``template``, with labels relative to anchors in ``anchors``
and its cases' conditions in ``conditions``), and what a document of either shows
(``document``, ``general_document``; with the display order of factors and terms,
``order``, and the roles of tensors, ``roles``).  Nothing here imports ``emit``.
"""
