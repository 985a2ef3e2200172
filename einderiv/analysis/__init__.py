"""Analysis: what a derivation means, as data — outer-product factors (``factor``), a block's
outer-product form (``outer``, writing out intermediates that split further with ``inline``)
and the per-block structure report (``structure``), families written once (``fold``), the
general form of a template for any depth or length (``template``, with the symbols it writes
and its terms in ``labels``, labels relative to anchors in ``anchors``, its cases' conditions
in ``conditions``, a recurrence's sums over steps in ``steps``, Eq. 9's case split in
``cases``), and what a document of either shows (``document``, ``general_document``; with the
display order of factors and terms, ``order``, and the roles of tensors, ``roles``).  Nothing
here imports ``emit``.
"""
