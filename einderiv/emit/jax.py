"""JAX code generation: the kernel of :mod:`einderiv.emit.numpy`, printed with ``jax.numpy``.

:class:`JaxPrinter` prints the same lowered kernel as :class:`~einderiv.emit.numpy.NumPyPrinter`
(the same statements, contraction plans and loops) over ``jax.numpy``.  The generated module
has the NumPy module's contract over JAX arrays, and every function is:

* pure: no array is updated in place (accumulations rebind: ``g = g + term``), nothing global
  is written;
* jit-compatible: Python branches and loops depend only on shapes, names and the depth (the
  length of a parameter list), never on values; ``jax.jit(mod["gradient"])`` traces once per
  set of shapes (``third_derivative``'s block key is a static argument);
* vmap-free: per-sample quantities carry the batch axis explicitly, as in NumPy;
* in the inputs' dtype: an array a function creates takes the dtype of the first
  floating-point array of its first argument (``_dtype = _dtype_of(params)``), so float32
  inputs stay float32 when ``jax_enable_x64`` is on.
"""
from __future__ import annotations

import functools

import sympy
from sympy.printing.numpy import JaxPrinter as SympyJaxPrinter

from .block_helpers import BLOCK_HELPERS
from .numpy_helpers import HELPERS as NUMPY_HELPERS
from .numpy import SUPPORT as NUMPY_SUPPORT
from .numpy import NumPyPrinter

__all__ = ["JaxPrinter", "JaxScalarPrinter"]


class JaxScalarPrinter(SympyJaxPrinter):
    """SymPy's JAX printer writing ``jnp.``, with ReLU's convention, stable sigmoid and softplus
    (:mod:`einderiv.emit.stable`) and erf/erfc.

    ``helper(name)`` records a helper function of the generated module that a body calls.
    """

    def __init__(self, settings=None, helper=None):
        super().__init__(settings)
        self.helper = helper or (lambda name: name)

    def _print_Sigmoid(self, e):
        return f"{self.helper('_sigmoid')}({self._print(e.args[0])})"

    def _print_Softplus(self, e):
        return f"jnp.logaddexp(0.0, {self._print(e.args[0])})"

    def _module_format(self, fqn, register=True):
        text = super()._module_format(fqn, register)
        return "jnp." + text[len("jax.numpy."):] if text.startswith("jax.numpy.") else text

    def _print_Heaviside(self, e):  # relu'(0) = 0, as autodiff frameworks choose
        return f"jnp.heaviside({self._print(e.args[0])}, 0.0)"

    def _print_Max(self, e):
        return functools.reduce(lambda a, b: f"jnp.maximum({a}, {b})", (self._print(a) for a in e.args))

    def _print_Min(self, e):
        return functools.reduce(lambda a, b: f"jnp.minimum({a}, {b})", (self._print(a) for a in e.args))

    def _print_log(self, e):  # log(1 + exp(x)) overflows for large x; logaddexp does not
        x = sympy.Wild("x")
        m = e.args[0].match(1 + sympy.exp(x))
        if m is not None:
            return f"jnp.logaddexp(0.0, {self._print(m[x])})"
        return super()._print_log(e)

    def _print_erf(self, e):  # SymPy writes math.erf, which takes no arrays (nor traced values)
        return f"{self.helper('_erf')}({self._print(e.args[0])})"

    def _print_erfc(self, e):
        return f"{self.helper('_erfc')}({self._print(e.args[0])})"


HELPERS = {
    "_erf": '''def _erf(x):
    """The error function elementwise (jax.scipy.special.erf)."""
    import jax.scipy.special
    return jax.scipy.special.erf(x)''',
    "_erfc": '''def _erfc(x):
    """The complementary error function elementwise (jax.scipy.special.erfc)."""
    import jax.scipy.special
    return jax.scipy.special.erfc(x)''',
    "_dtype_of": '''def _dtype_of(d):
    """The dtype of a call's arrays: that of the first floating-point array in the dict ``d`` or
    the tuple ``d`` (a list of arrays counts by its first); the arrays a function creates take it."""
    for v in (d.values() if isinstance(d, dict) else d):
        x = v[0] if isinstance(v, (list, tuple)) and v else v
        if hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.floating):
            return x.dtype
    return jnp.zeros(()).dtype''',
    "_sigmoid": NUMPY_HELPERS["_sigmoid"].replace("np.", "jnp.").replace("(0, ", "(0.0, "),
    "_softmax": NUMPY_HELPERS["_softmax"].replace("np.", "jnp."),
    "_logsumexp": NUMPY_HELPERS["_logsumexp"].replace("np.", "jnp."),
    **{k: NUMPY_HELPERS[k].replace("np.", "jnp.") for k in ("_max", "_min", "_argmax", "_argmin", "_inv", "_det",
                                                           "_logdet")},
    "_window_view": '''def _window_view(a, size, axis, stride, count):
    """`a` with axis `axis` (positions u) split into (t, tap), the tap axis last:
    out[..., t, ..., tap] = a[..., stride*t + tap, ...] for t < count (valid padding); a gather
    with constant indices."""
    index = stride * jnp.arange(count)[:, None] + jnp.arange(size)
    return jnp.moveaxis(jnp.take(a, index, axis=axis), axis + 1, -1)''',
    "_shift_view": '''def _shift_view(a, size, axis, stride, count, dilation, offset, lo, hi):
    """`a` with axis `axis` split into (t, tap), the tap axis last:
    out[..., t, ..., tap] = a[..., stride*t + dilation*tap + offset, ...] for t < count, zero
    outside `a` (`lo`, `hi` zeros padded before and after the axis); size 0: no tap axis."""
    if lo or hi:
        pad = [(0, 0)] * a.ndim
        pad[axis] = (lo, hi)
        a = jnp.pad(a, pad)
    index = lo + offset + stride * jnp.arange(count)[:, None] + dilation * jnp.arange(max(size, 1))
    v = jnp.moveaxis(jnp.take(a, index, axis=axis), axis + 1, -1)
    return v if size else v[..., 0]''',
    "_shift_array": '''def _shift_array(n, count, size, stride, dilation, offset, dtype):
    """S[u, t, tap] = 1 where u = stride*t + dilation*tap + offset (S[u, t] for size 0): the
    selection tensor as a small 0/1 array (never the circulant matrix)."""
    u = jnp.arange(n)[:, None, None]
    t = jnp.arange(count)[:, None]
    s = (u == stride * t + dilation * jnp.arange(max(size, 1)) + offset).astype(dtype)
    return s if size else s[..., 0]''',
    "_shift_scatter": '''def _shift_scatter(g, n, axis, size, stride, dilation, offset):
    """The transpose of _shift_view: out[..., u, ...] = the sum of g[..., t, tap, ...] over
    stride*t + dilation*tap + offset = u < n (the tap axis after t; size 0: none), one slice per tap."""
    if not size:
        g = jnp.expand_dims(g, axis + 1)
    count = g.shape[axis]
    shape = list(g.shape)
    del shape[axis + 1]
    shape[axis] = n
    out = jnp.zeros(shape, dtype=g.dtype)
    for k in range(g.shape[axis + 1]):
        first = offset + dilation * k  # u at t = 0
        lo = max(0, -(first // stride))
        hi = min(count - 1, (n - 1 - first) // stride)
        if lo <= hi:
            into = (slice(None),) * axis + (slice(stride * lo + first, stride * hi + first + 1, stride),)
            part = jnp.take(g, k, axis=axis + 1)[(slice(None),) * axis + (slice(lo, hi + 1),)]
            out = out.at[into].add(part)
    return out''',
    "_window_array": '''def _window_array(n, count, size, stride, dtype):
    """S[u, t, tap] = 1 where u = stride*t + tap: the selection tensor of index arithmetic as a
    small 0/1 array, for a window not contracted with one tensor on u (never the circulant matrix)."""
    u = jnp.arange(n)[:, None, None]
    t = jnp.arange(count)[:, None]
    return (u == stride * t + jnp.arange(size)).astype(dtype)''',
    **BLOCK_HELPERS,
}

SUPPORT = {
    "_Tensors": NUMPY_SUPPORT["_Tensors"],
    # a block in the inputs' dtype (a block that reads no tensor, a zero one, cannot tell it)
    "third_derivatives": NUMPY_SUPPORT["third_derivatives"].replace(
        "    t = _Tensors(", "    _dtype = _dtype_of(params)\n    t = _Tensors(").replace(
        "np.transpose(block, axes)", "jnp.transpose(block, axes).astype(_dtype)"),
    "third_derivative": NUMPY_SUPPORT["third_derivative"],
    "expand_factors": NUMPY_SUPPORT["expand_factors"].replace("np.", "jnp."),
}


class JaxPrinter(NumPyPrinter):
    """Prints a lowered kernel module as JAX source (see the module docstring)."""

    prelude = "import jax.numpy as jnp"
    lib = "jnp"
    helpers = HELPERS
    support = SUPPORT
    buffers = False  # immutable arrays: hessian returns its blocks, (b, a) as the transpose of (a, b)

    def __init__(self, settings=None):
        super().__init__(settings)
        self._creates = False  # whether the function being printed creates an array

    def scalar_printer(self):
        return JaxScalarPrinter({"allow_unknown_functions": False}, helper=self.helper)

    def create(self, fn: str, *args) -> str:
        """``jnp.fn(args, dtype=_dtype)``: an array in the inputs' dtype."""
        self._creates = True
        return self.call(fn, *args, "dtype=_dtype")

    def preamble(self, f) -> list:
        return [f"_dtype = {self.helper('_dtype_of')}({self.inputs_of(f)})"] if self._creates else []

    def _print_Support(self, s) -> str:
        if s.name == "third_derivatives":  # reads the inputs' dtype
            self.helper("_dtype_of")
        return super()._print_Support(s)

    def _print_Function(self, f) -> str:
        self._creates = False
        return super()._print_Function(f)

    def _print_Eye(self, e) -> str:
        return self.create("eye", str(e.n))

    def _print_Ones(self, e) -> str:
        return self.create("ones", str(e.n))

    def _print_Zeros(self, e) -> str:
        return self.create("zeros", self._print(e.shape))

    def _print_ShiftArray(self, e) -> str:
        self._creates = True
        return f"{self.helper('_shift_array')}({e.n}, {e.count}, {e.size}, {e.stride}, {e.dilation}, {e.offset}, _dtype)"

    def _print_SelectionArray(self, e) -> str:
        self._creates = True
        return f"{self.helper('_window_array')}({e.n}, {e.count}, {e.size}, {e.stride}, _dtype)"

    def broadcast(self, text: str, operands: list, constant: bool) -> str:
        shape = self.call("broadcast_shapes", *(self.call("shape", x) for x in operands))
        if constant:
            return self.create("full", shape, text)
        return self.call("broadcast_to", text, shape)

    def _print_Einsum(self, e) -> str:  # a fixed path, as opt_einsum writes it
        ops = [self._print(o) for o in e.operands]
        if isinstance(e.optimize, tuple):
            return self.call("einsum", f'"{e.subscripts}"', *ops, f"optimize={list(e.optimize)}")
        return self.call("einsum", f'"{e.subscripts}"', *ops)
