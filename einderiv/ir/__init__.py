"""The intermediate representation every layer shares.

* :mod:`.names`  — tensor names as values: :class:`Name` (base, labels,
  lifted-argument role), :class:`Sym` labels, :class:`Quantity` with a :class:`Kind`;
* :mod:`.nodes`  — frozen index-expression nodes (:class:`Ref`, :class:`Prod` = einsum,
  :class:`Apply`, …) that declare their own structure;
* :mod:`.tools`  — the one toolkit that walks and rebuilds them (renaming,
  substitution, the alpha-equivalence key);
* :mod:`.heap`   — the garbage collector paused while a pass allocates many of them.
"""
from .heap import paused
from .names import (ANY, Kind, Label, Name, Quantity, Sym, TensorName, label_range, labels_of, map_names,
                    names_in)
from .nodes import (EXTREMES, MATRIX_NODES, MATRIX_SCALARS, ONE, REDUCTIONS, ZERO, Add, Apply, ArgMax, Const, Delta, Expr, Fn, Index, Inv,
                    LogSumExp, MatDet, Max, Ones, Prod, Ref, Softmax, Window, add, fresh, is_zero, prod, reset_fresh, unique)
from .tools import (all_indices, alpha_key, distinct, map_children, map_indices, map_refs, match_indices,
                    name_binders, own_indices, ref_names, refs, rename, rename_touched, shape_key, substitute, walk)

__all__ = [
    "paused",
    "ANY", "Kind", "Label", "Name", "Quantity", "Sym", "TensorName", "label_range", "labels_of", "map_names",
    "names_in",
    "EXTREMES", "MATRIX_NODES", "MATRIX_SCALARS", "ONE", "REDUCTIONS", "ZERO", "Add", "Apply", "ArgMax", "Const", "Delta", "Expr", "Fn", "Index",
    "LogSumExp", "Max", "Ones", "Prod", "Ref",
    "Softmax", "Window", "add", "fresh", "is_zero", "prod", "reset_fresh", "unique",
    "all_indices", "alpha_key", "distinct", "map_children", "map_indices", "map_refs", "match_indices",
    "name_binders", "own_indices", "ref_names", "refs", "rename", "rename_touched", "shape_key", "substitute", "walk",
]
