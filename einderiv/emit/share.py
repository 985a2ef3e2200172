"""Shared functions: formulas equal up to the tensors they read are written once.

A third-order module computes thousands of derivatives of intermediates (``d[hess[s,s'],θ]``)
and hundreds of blocks, and most of them are one formula applied to different tensors: the
same derivative of the same kind of intermediate at another step of a recurrence, or with
respect to another parameter of the same shape.  :func:`share` writes each formula once, as a
function of the tensors it reads — a *shared function* ``_shared_<n>(hess, jac, …)`` whose
arguments are named by the kinds of tensor they take, or, for a formula used once, a function
named after its quantity whose arguments are the tensors themselves — and gives each quantity
or block a *row*: the function, then the keys of its arguments in the dict ``t``.  A caller
computes a row as ``function(*[t[key] for key in keys])`` (a block's function also takes the
batch size ``B`` first).

Two formulas share a function when, with their tensors replaced by positional placeholders,
their expressions are equal up to index names (:func:`~einderiv.ir.alpha_key`), over the same
concrete sizes, with the same batch axes, the same kinds of tensors in each place and the
same reuse of a node's value by a derivative (``tanh'`` reading ``tanh``): everything the
lowering of an expression depends on, so the shared function computes exactly what each
formula's own function would have.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..ir import Apply, Expr, Index, Kind, Name, Quantity, TensorName, all_indices, alpha_key, map_refs, refs, walk
from .kernel import Block, Frame, Function, Local, Return, Value
from .kernel_arrays import BATCH, Str, TupleOf, Var, param_shape
from .kernel_context import Context
from .kernel_lower import derivative_body


@dataclass(frozen=True)
class Spec:
    """A formula to write: ``expr`` with axes ``indices`` — the value of the quantity ``key``
    (per sample), or with ``block`` (its parameters) a batch-mean derivative block; ``name``
    is the function's name if no other formula shares it, ``doc`` says what it computes."""

    key: object
    name: str
    doc: str
    indices: tuple[Index, ...]
    expr: Expr
    block: tuple | None = None


def role(ctx: Context, name: TensorName) -> str:
    """What kind of tensor a name is, as shared functions call their arguments: ``hess``,
    ``d_jac`` (a derivative of a Jacobian), ``w`` (a parameter), ``x`` (data), ``z`` (a lifted
    pre-activation), ``v`` (another node)."""
    if isinstance(name, Quantity):
        return "d_" + role(ctx, name.parts[0]) if name.kind is Kind.D else name.kind.value.lower()
    if name in ctx.shape:
        return "w" if name in ctx.params else "x"
    return "z" if name.arg else "v"


class Sharing:
    """Writes the functions and rows of a list of formulas (see the module docstring)."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.count = 0

    def operands(self, expr: Expr) -> tuple[list, tuple]:
        """The tensors ``expr`` reads, in order of first use, then the nodes whose value a
        derivative reuses; and that reuse as (function, argument's position, node's position)."""
        names = list(dict.fromkeys(r.name for r in refs(expr)))
        known = []
        for x in walk(expr):
            if isinstance(x, Apply) and x.fn.deriv != (0,) * len(x.args):
                node = self.ctx.known_value(x)
                if node is not None and derivative_body(self.ctx.table, x.fn.name, x.fn.deriv, True)[2]:
                    if node not in names:
                        names.append(node)
                    known.append((x.fn.name, names.index(x.args[0].name), names.index(node)))
        return names, tuple(dict.fromkeys(known))

    def form(self, spec: Spec, names: list, known: tuple) -> tuple:
        """What must agree for two formulas to share a function."""
        pos = {n: Name(f"_{k}") for k, n in enumerate(names)}
        abstract = map_refs(spec.expr, pos.__getitem__)
        sizes = tuple(self.ctx.dim(i) for i in spec.indices + all_indices(abstract))
        return (spec.block is not None, alpha_key(abstract, spec.indices, sizes=False), sizes,
                tuple(self.ctx.batched_member(n) for n in names), tuple(role(self.ctx, n) for n in names), known)

    def share(self, specs: list[Spec]) -> tuple[list[Function], dict]:
        """The functions (in order of first use) and each spec's row, by its key."""
        keyed, forms = [], {}
        for spec in specs:
            names, known = self.operands(spec.expr)
            form = self.form(spec, names, known)
            forms.setdefault(form, []).append(spec)
            keyed.append((spec, form, names, known))
        functions, written, rows = [], {}, {}
        for spec, form, names, known in keyed:
            if form not in written:
                fn = self.function(spec, names, known, len(forms[form]))
                functions.append(fn)
                written[form] = fn.name
            rows[spec.key] = TupleOf((Var(written[form]),) + tuple(Str(self.ctx.key[n]) for n in names))
        return functions, rows

    def function(self, spec: Spec, names: list, known: tuple, uses: int) -> Function:
        """The function of a formula with ``uses`` users: named after the formula and reading
        its tensors under their own names if it has one, else shared, with placeholders."""
        if uses == 1:
            args = [self.ctx.ident[n] for n in names]
            expr, name, doc = spec.expr, spec.name, spec.doc + ": "
        else:
            self.count += 1
            args, placeholders, seen = [], {}, {}
            for k, n in enumerate(names):
                base = role(self.ctx, n)
                seen[base] = seen.get(base, 0) + 1
                args.append(base if seen[base] == 1 else f"{base}_{seen[base]}")
                placeholders[n] = Name(f"_{self.count}_{k}")
            self.ctx.bind_arguments({placeholders[n]: (a, self.ctx.batched_member(n)) for n, a in zip(names, args)},
                                    {(fn, placeholders[names[a]]): placeholders[names[v]] for fn, a, v in known})
            expr = map_refs(spec.expr, placeholders.__getitem__)
            name = f"_shared_{self.count}"
            doc = f"Shared by {uses} {'blocks' if spec.block is not None else 'quantities'}: "
        lhs = "block" if spec.block is not None else "value"
        doc += self.ctx.show(lhs, spec.indices, expr)
        if spec.block is None:
            return Function(name, tuple(args), doc, (Return(Value(expr, spec.indices)),), frame=Frame.ARGS)
        target = Local(lhs)
        body = (Block(target, spec.block, spec.indices, expr, False, lhs, param_shape(spec.block)), Return(target))
        return Function(name, (BATCH.name,) + tuple(args), doc, body, frame=Frame.ARGS)
