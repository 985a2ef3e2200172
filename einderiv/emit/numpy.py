"""NumPy code generation: a :class:`~einderiv.calculus.derivation.Derivation` → a standalone module.

:func:`generate` builds the derivation's kernel (:mod:`einderiv.emit.kernel_build`), writes a
family's steps as loops (:mod:`einderiv.emit.loops`), lowers it to array statements
(:mod:`einderiv.emit.kernel_statements`) and prints it with :class:`NumPyPrinter`.  The
generated module imports only numpy and defines (other tools call these names):

* ``PARAMS`` (name → shape), ``INPUTS`` (input/label name → per-sample shape);
* ``objective(params, data)`` → per-sample objective, shape ``(B,)``;
* ``gradient(params, data)`` → name → batch-mean gradient;
* ``per_sample_gradient(params, data)`` → name → ``(B, *shape)``;
* ``gradient_factors(params, data)`` → name → list of terms, each a tuple of
  per-sample factors whose outer product (factor k carries the parameter axes
  ``GRADIENT_FACTOR_AXES[name][term][k]``) summed over terms is the per-sample
  gradient; ``expand_factors(name, terms)`` rebuilds it (for checking);
* ``hessian(params, data)`` → ``(a, b)`` → batch-mean block, ``shape_a + shape_b``;
* ``hvp(params, data, vector)`` → name → Σ_b H[(name, b)]·vector[b], computed term
  by term with the vector as one more einsum operand — no block is formed;
* ``per_sample_gradient_norms(params, data)`` → name → ``(B,)`` norms ‖∂f_b/∂θ‖, from
  the factored terms (Σ_t Σ_u ⟨g_t, g_u⟩ as contractions of the factors; nothing of
  size B × P is formed);
* ``ggn_diagonal(params, data)`` → name → exact diagonal of the batch-mean generalised
  Gauss–Newton matrix Σ_ab J_aᵀ ∂²f/∂a∂b J_b (a, b the objective's arguments): the
  diagonal of the terms of each block ∂²f/∂θ∂θ that carry the objective's Hessian;
* ``third_derivative(params, data, (a, b, c))`` when the derivation has order ≥ 3, and
  ``third_derivatives(params, data, wrts=None)`` for several blocks at once (default: each distinct
  block once), sharing the forward pass and every intermediate;
* for checking tools: ``_forward(params, data)`` → every tensor of the network by name, and
  one function ``_<id>(t)`` per quantity ``q`` with ``id = identifiers(derivation)[q]``, which
  reads the tensors and quantities it needs from ``t`` (keys: tensor names, quantity ids) —
  except the derivatives ``d[q,θ]`` of order 3, whose row ``_DERIVATIVES[id]`` is a function of
  tensors and the keys of its arguments (:mod:`einderiv.emit.kernel_build`).

A printer for another array library subclasses :class:`NumPyPrinter` and overrides the methods
that name NumPy (:attr:`NumPyPrinter.prelude`, the creation functions, ``tensordot``,
``transpose``, the helper sources, the scalar printer) and the hooks :meth:`NumPyPrinter.broadcast`
and :meth:`NumPyPrinter.preamble`; :mod:`einderiv.emit.torch` and :mod:`einderiv.emit.jax` do.

Example:
    >>> src = generate(derive(network, 2), {"n1": 5})     # doctest: +SKIP
    >>> ns = {}; exec(src, ns); ns["gradient"](params, data)["W1"].shape  # doctest: +SKIP
    (5, 4)
"""
from __future__ import annotations

import functools

import sympy
from sympy.printing.numpy import NumPyPrinter as SympyNumPyPrinter
from sympy.printing.printer import Printer

from ..ir import Sym, paused
from .float64 import refuse_too_large
from .kernel import Frame, Helpers, Range
from .kernel_arrays import BATCH, Num, Scale
from .kernel_build import build
from .kernel_context import Context, identifiers
from .kernel_statements import lower_module
from .columns import by_columns, columns, written
from .liveness import drop_unread, free_dead
from .loops import fold_loops, has_families
from .literals import docstring_literal
from .numpy_helpers import HELPERS
from .straight import straighten

#: terms of a sum written flat; a longer one is split (see :meth:`NumPyPrinter._sum`)
FLAT_SUM = 64

__all__ = ["generate", "identifiers", "NumPyPrinter", "ScalarPrinter"]


class ScalarPrinter(SympyNumPyPrinter):
    """SymPy's NumPy printer with ``np.`` calls, ReLU's conventions, stable sigmoid and softplus
    (:mod:`einderiv.emit.stable`) and erf/erfc on arrays.

    ``helper(name)`` records a helper function of the generated module that a body calls.
    """

    def __init__(self, settings=None, helper=None):
        super().__init__(settings)
        self.helper = helper or (lambda name: name)

    def _print_Sigmoid(self, e):
        return f"{self.helper('_sigmoid')}({self._print(e.args[0])})"

    def _print_Softplus(self, e):
        return f"np.logaddexp(0, {self._print(e.args[0])})"

    def _module_format(self, fqn, register=True):
        text = super()._module_format(fqn, register)
        return "np." + text[len("numpy."):] if text.startswith("numpy.") else text

    def _print_Heaviside(self, e):  # relu'(0) = 0, as autodiff frameworks choose
        return f"np.heaviside({self._print(e.args[0])}, 0.0)"

    def _print_Max(self, e):
        return functools.reduce(lambda a, b: f"np.maximum({a}, {b})", (self._print(a) for a in e.args))

    def _print_Min(self, e):
        return functools.reduce(lambda a, b: f"np.minimum({a}, {b})", (self._print(a) for a in e.args))

    def _print_log(self, e):  # log(1 + exp(x)) overflows for large x; logaddexp does not
        x = sympy.Wild("x")
        m = e.args[0].match(1 + sympy.exp(x))
        if m is not None:
            return f"np.logaddexp(0, {self._print(m[x])})"
        return super()._print_log(e)

    def _print_erf(self, e):  # SymPy writes math.erf, which takes no arrays
        return f"{self.helper('_erf')}({self._print(e.args[0])})"

    def _print_erfc(self, e):
        return f"{self.helper('_erfc')}({self._print(e.args[0])})"


SUPPORT = {
    "_Tensors": '''class _Tensors(dict):
    """The dict t of a third-derivative call: tensors by name, and each quantity computed the first
    time it is read (its row of _DERIVATIVES, or its function _<key>(t)): a call computes what its
    blocks need, once."""

    def __missing__(self, key):
        row = _DERIVATIVES.get(key)
        value = self[key] = row[0](*[self[k] for k in row[1:]]) if row else globals()["_" + key](self)
        return value''',
    "third_derivatives": '''def third_derivatives(params, data, wrts=None):
    """Batch-mean third-derivative blocks: (a, b, c) -> array shape_a + shape_b + shape_c, for each
    ordering in wrts (default: every distinct block once, the keys of _THIRD).  One forward pass, and
    every intermediate computed once, when a block first reads it.  Mixed partial derivatives commute:
    an ordering is the block of its parameters in PARAMS order, transposed."""
    t = _Tensors(_forward(params, data))
    B = next(iter(data.values())).shape[0] if data else 1
    names = list(PARAMS)
    out = {}
    for wrt in (_THIRD if wrts is None else wrts):
        wrt = tuple(wrt)
        if len(wrt) != 3 or any(w not in PARAMS for w in wrt):
            raise KeyError(f"{wrt!r}: a third-derivative block takes three of {names}")
        order = sorted(range(3), key=lambda k: names.index(wrt[k]))
        row = _THIRD[tuple(wrt[k] for k in order)]
        block = row[0](B, *[t[k] for k in row[1:]])
        start = [sum(len(PARAMS[wrt[k]]) for k in order[:g]) for g in range(4)]  # each group's first axis
        axes = [a for k in range(3) for a in range(start[order.index(k)], start[order.index(k) + 1])]
        out[wrt] = np.transpose(block, axes)
    return out''',
    "third_derivative": '''def third_derivative(params, data, wrt):
    """Batch-mean third-derivative block for wrt = (a, b, c), shape_a + shape_b + shape_c."""
    return third_derivatives(params, data, [wrt])[tuple(wrt)]''',
    "expand_factors": '''def expand_factors(name, terms):
    """Rebuild the per-sample gradient of `name` from gradient_factors(...)[name] (for checking)."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    out = "Z" + letters[:len(PARAMS[name])]
    total = 0.0
    for term, axes in zip(terms, GRADIENT_FACTOR_AXES[name]):
        subs = ",".join("Z" + "".join(letters[a] for a in ax) for ax in axes)
        total = total + np.einsum(subs + "->" + out, *term)
    return total''',
}


def _label(value) -> str:
    """``3``, ``k - 1``, ``n + 1``."""
    if not isinstance(value, Sym):
        return str(value)
    off = value.offset
    return value.symbol + (f" + {off}" if off > 0 else f" - {-off}" if off < 0 else "")


class NumPyPrinter(Printer):
    """Prints a lowered kernel module (:mod:`einderiv.emit.kernel`) as NumPy source.

    One ``_print_<Node>`` method per node: expressions return text, statements a list of lines.
    Settings: ``indent`` (one level of indentation).
    """

    _default_settings = {"indent": "    "}
    #: what the module imports
    prelude = "import numpy as np"
    #: the array library's module name in generated code
    lib = "np"
    helpers = HELPERS
    support = SUPPORT
    #: whether arrays are written in place: ``hessian`` fills one P × P buffer (``out=``)
    buffers = True

    def __init__(self, settings=None):
        super().__init__(settings)
        self.indent = self._settings["indent"]
        self.scalar = self.scalar_printer()
        self.used: set[str] = set()  # helpers the printed statements call
        self._methods: dict = {}
        self._scalars: dict = {}

    def scalar_printer(self) -> Printer:
        """The SymPy printer of elementwise bodies."""
        return ScalarPrinter({"allow_unknown_functions": False}, helper=self.helper)

    def _print(self, e, **kwargs):  # one method per node class, found once
        method = self._methods.get(type(e))
        if method is None:
            method = self._methods[type(e)] = getattr(self, "_print_" + type(e).__name__, self.emptyPrinter)
        return method(e)

    def emptyPrinter(self, e):
        raise TypeError(f"{type(self).__name__} cannot print {type(e).__name__}")

    def call(self, fn: str, *args) -> str:
        """``np.fn(args)``: a function of the array library."""
        return f"{self.lib}.{fn}({', '.join(args)})"

    def helper(self, name: str) -> str:
        """The name of a helper function, recorded so that its source is written."""
        self.used.add(name)
        return name

    # -- module ------------------------------------------------------------------------
    def _print_Module(self, m) -> str:
        items = [self._print(it) for it in m.items]  # first: they record the helpers they need
        body = []
        for it, text in zip(m.items, items):
            body += [self.helpers[h] for h in sorted(self.used)] if isinstance(it, Helpers) else [text]
        head = [docstring_literal(m.header + "\n"), self.prelude, ""]
        return "\n".join(head + [self._print(c) for c in m.constants]) + "\n\n\n" + "\n\n\n".join(body) + "\n"

    def _print_Function(self, f) -> str:
        body = []
        for st in f.prologue + f.body:  # first: the preamble may depend on what the body needs
            body += [self.indent + line for line in self._print(st)]
        lines = [f"def {f.name}({', '.join(f.args)}):", f'{self.indent}"""{f.doc}"""']
        return "\n".join(lines + [self.indent + line for line in self.preamble(f)] + body)

    def preamble(self, f) -> list:
        """Lines a function starts with, asked after its body is printed (a backend that creates
        arrays with the inputs' dtype reads it here); NumPy needs none."""
        return []

    @staticmethod
    def inputs_of(f) -> str:
        """What a function's inputs are, for a backend that reads their dtype: its first argument
        (``params`` or ``t``, a dict), or for a function of tensors (``Frame.ARGS``: a shared
        third-order function) the tuple of its tensor arguments (the batch size ``B`` is none)."""
        if f.frame is Frame.ARGS:
            tensors = [a for a in f.args if a != BATCH.name]
            return "(" + "".join(a + ", " for a in tensors) + ")"
        return f.args[0]

    def _print_Constant(self, c) -> str:
        return f"{c.name} = {self._print(c.value)}"

    def _print_Support(self, s) -> str:
        return self.support[s.name]

    def _print_Source(self, s) -> str:
        return s.text

    def _print_Helpers(self, h) -> str:
        return ""

    # -- statements ---------------------------------------------------------------------
    def _print_Assign(self, s) -> list:
        return [f"{self._print(s.target)} = {self._print(s.value)}"]

    def _print_AddInto(self, s) -> list:
        return [f"{self._print(s.target)} += {self._print(s.value)}"]

    def _print_Run(self, s) -> list:
        return [self._print(s.call)]

    def _print_Comment(self, s) -> list:
        return [f"# {s.text}"]

    def _print_Free(self, s) -> list:
        return ["del " + ", ".join(s.names)]

    def _print_When(self, s) -> list:  # keys: Hessian block keys, names of parameters (no quotes in them)
        keys = "(" + ", ".join("(" + ", ".join(f'"{p}"' for p in k) + ")" for k in s.keys or ()) + ")"
        of = self._print(s.of)
        test = of if s.keys is None else f"{keys[1:-1]} in {of}" if len(s.keys) == 1 else f"not {of}.isdisjoint({keys})"
        return [f"if {test}:"] + [self.indent + line for st in s.body for line in self._print(st)]

    def _print_Python(self, s) -> list:
        return s.text.split("\n")

    def _print_Return(self, s) -> list:
        return [f"return {self._print(s.value)}"]

    def _print_Append(self, s) -> list:
        return [f"{self._print(s.target)}.append({self._print(s.value)})"]

    def _print_Contraction(self, s) -> list:
        ops = ", ".join(self._print(o) for o in s.operands)
        return ([f'# einsum("{s.subscripts}", {ops})'] if s.note else []) + \
            [f"{st.target} = {self._print(st.expr)}" for st in s.steps if st.target is not None]

    def _print_Elementwise(self, s) -> list:
        names = tuple((sym, self._print(x)) for sym, x in s.operands)
        text = self._scalars.get((s.body, names))
        if text is None:  # the same derivative of the same operands recurs in many functions
            text = self._scalars[(s.body, names)] = self.scalar.doprint(
                s.body.xreplace({sym: sympy.Symbol(x, real=True) for sym, x in names}))
        if s.broadcast is not None:
            text = self.broadcast(text, [self._print(x) for x in s.broadcast], not s.body.free_symbols)
        return [f"{s.target} = {text}"]

    def broadcast(self, text: str, operands: list, constant: bool) -> str:
        """The elementwise value ``text`` broadcast to the common shape of ``operands``
        (``constant``: ``text`` is a number, it reads none of them)."""
        shapes = ", ".join(self.call("shape", x) for x in operands)
        return self.call("broadcast_to", text, self.call("broadcast_shapes", shapes))

    def _print_Loop(self, s) -> list:
        if isinstance(s.over, Range):
            stop = s.over.stop
            args = [_label(s.over.start), _label(stop)] + (["-1"] if s.over.step == -1 else [])
            head = f"range({', '.join(args)})"
        else:
            head = repr(tuple(s.over))
        lines = [f"for {s.var} in {head}:"]
        for st in s.body:
            lines += [self.indent + line for line in self._print(st)]
        return lines

    # -- expressions ----------------------------------------------------------------------
    def _print_Var(self, e) -> str:
        return e.name

    def _print_Num(self, e) -> str:
        return _number(e.value)

    def _print_Str(self, e) -> str:
        return f'"{e.text}"'

    def _print_Py(self, e) -> str:
        return repr(e.value)

    def _print_Code(self, e) -> str:
        return e.text

    def _print_Label(self, e) -> str:
        return _label(e.value)

    def _print_Key(self, e) -> str:
        symbolic = False

        def field(lab) -> str:
            nonlocal symbolic
            if isinstance(lab, Sym):
                symbolic = True
                return "({" + str(lab) + "})"
            return f"({lab})"

        text = e.name.text(field)
        return f'f"{text}"' if symbolic else f'"{text}"'

    def _print_Item(self, e) -> str:
        return f"{self._print(e.obj)}[{self._print(e.key)}]"

    def _print_Paren(self, e) -> str:
        return f"({self._print(e.x)})"

    def _print_Subscript(self, e) -> str:
        slots = ", ".join("None" if s is None else str(s) for s in e.slots)
        return f"{self._print(e.x)}[{slots}]"

    def _print_Transpose(self, e) -> str:
        if len(e.perm) == 2:
            return f"{self._print(e.x)}.T"
        return f"{self._print(e.x)}.transpose({', '.join(map(str, e.perm))})"

    def _print_SumAxes(self, e) -> str:
        axis = str(e.axes[0]) if len(e.axes) == 1 else str(e.axes)
        return f"{self._print(e.x)}.sum(axis={axis})"

    def _print_MatMul(self, e) -> str:
        return f"{self._print(e.a)} @ {self._print(e.b)}"

    def _print_TensorDot(self, e) -> str:
        ka, kb = e.axes
        return self.call("tensordot", self._print(e.a), self._print(e.b), f"axes=({list(ka)}, {list(kb)})")

    def _print_Einsum(self, e) -> str:
        if isinstance(e.optimize, tuple):
            optimize = "['einsum_path', " + ", ".join(str(p) for p in e.optimize) + "]"
        else:
            optimize = str(e.optimize)
        return self.call("einsum", f'"{e.subscripts}"', *(self._print(o) for o in e.operands), f"optimize={optimize}")

    def _print_Mul(self, e) -> str:
        return " * ".join(self._print(f) for f in e.factors)

    def _print_Sum(self, e) -> str:
        if not e.terms:
            return "0.0"
        return self._sum(e.terms)

    def _sum(self, terms) -> str:
        """``a + b - c``; a sum of more than :data:`FLAT_SUM` terms is split in halves, each in
        parentheses, so that Python's compiler never meets a sum nested thousands deep (the
        per-sample gradient norms of a 120-layer linear chain sum 7,381 products)."""
        if len(terms) > FLAT_SUM:
            half = len(terms) // 2
            return f"({self._sum(terms[:half])}) + ({self._sum(terms[half:])})"
        out = self._print(terms[0])
        for t in terms[1:]:
            text = self._print(t)
            out += f" - {text[1:]}" if _negative(t) else f" + {text}"
        return out

    def _print_Scale(self, e) -> str:
        if e.coef == -1:
            return f"-{self._print(e.x)}"
        return f"{_number(e.coef)} * {self._print(e.x)}"

    def _print_Div(self, e) -> str:
        return f"{self._print(e.x)} / {self._print(e.y)}"

    def _print_Eye(self, e) -> str:
        return self.call("eye", str(e.n))

    def _print_Ones(self, e) -> str:
        return self.call("ones", str(e.n))

    def _print_Zeros(self, e) -> str:
        return self.call("zeros", self._print(e.shape))

    def _print_Lib(self, e) -> str:
        return self.call(e.fn, *(self._print(a) for a in e.args))

    def _print_Reduction(self, e) -> str:
        return f"{self.helper('_' + e.kind)}({self._print(e.x)}, axis={e.axis})"

    def _print_MatrixFn(self, e) -> str:
        return f"{self.helper('_' + e.kind)}({self._print(e.x)})"

    def _print_WindowView(self, e) -> str:
        return f"{self.helper('_window_view')}({self._print(e.x)}, {e.size}, {e.axis}, {e.stride}, {e.count})"

    def _print_ShiftView(self, e) -> str:
        return (f"{self.helper('_shift_view')}({self._print(e.x)}, {e.size}, {e.axis}, {e.stride}, {e.count}, "
                f"{e.dilation}, {e.offset}, {e.lo}, {e.hi})")

    def _print_ShiftArray(self, e) -> str:
        return f"{self.helper('_shift_array')}({e.n}, {e.count}, {e.size}, {e.stride}, {e.dilation}, {e.offset})"

    def _print_SelectionArray(self, e) -> str:
        return f"{self.helper('_window_array')}({e.n}, {e.count}, {e.size}, {e.stride})"

    def _print_BatchSize(self, e) -> str:
        return f"{self._print(e.x)}.shape[0]"

    def _print_Call(self, e) -> str:
        if e.fn in self.helpers:
            self.helper(e.fn)
        return f"{e.fn}({', '.join(self._print(a) for a in e.args)})"

    def _print_TupleOf(self, e) -> str:
        return "(" + ", ".join(self._print(x) for x in e.items) + ("," if len(e.items) == 1 else "") + ")"

    def _print_ListOf(self, e) -> str:
        return "[" + ", ".join(self._print(x) for x in e.items) + "]"

    def _print_DictOf(self, e) -> str:
        items = [f"{self._print(k)}: {self._print(v)}" for k, v in e.items]
        if e.multiline:
            return "{\n" + "".join(f"{self.indent}{it},\n" for it in items) + "}"
        return "{" + ", ".join(items) + "}"


def _number(v) -> str:
    return str(v) if isinstance(v, int) else repr(v)


def _negative(t) -> bool:
    """A term a sum subtracts: scaled by a negative number, or a negative number."""
    return (isinstance(t, Scale) and t.coef < 0) or (isinstance(t, Num) and t.value < 0)


def generate(derivation, sizes: dict[str, int] | None = None, *, literal_einsum: bool = False,
             unrolled: bool = False, printer: type = None) -> str:
    """The source of a standalone NumPy module for ``derivation`` (see the module docstring).

    Every size must be known, from the network's ``dims`` or from ``sizes``;
    otherwise a :class:`~einderiv.errors.ShapeError` names the missing one.
    ``literal_einsum=True`` writes each contraction as one ``np.einsum`` call with
    its path as a literal, instead of the BLAS-backed statements of
    :mod:`einderiv.emit.lower` (same numbers; slower on small sizes).
    ``unrolled=True`` writes every member of a family out instead of loops over its steps.
    ``printer``: the printer class of another array library (a :class:`NumPyPrinter` subclass:
    :mod:`einderiv.emit.torch`, :mod:`einderiv.emit.jax`); the kernel is the same.
    """
    with paused():
        ctx = Context(derivation, sizes, literal_einsum)
        ctx.buffer = (printer or NumPyPrinter).buffers and not literal_einsum  # literal: one einsum a block
        long = not unrolled and printer in (None, NumPyPrinter) and by_columns(derivation)  # a long recurrence
        ctx.by_columns = written(ctx) if long else frozenset()
        module = build(ctx)
        # a family's steps as loops, or each public function as one straight body of locals
        module = fold_loops(module, ctx) if not unrolled and has_families(derivation) else straighten(module, ctx)
        module = columns(module, ctx) if long else module
        return refuse_too_large((printer or NumPyPrinter)().doprint(free_dead(drop_unread(lower_module(ctx, module)))))
