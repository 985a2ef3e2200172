"""PyTorch code generation: the kernel of :mod:`einderiv.emit.numpy`, printed with torch ops.

:class:`TorchPrinter` prints the same lowered kernel (the same statements, the same pairwise
contraction plans, the same loops) as :class:`~einderiv.emit.numpy.NumPyPrinter`, in plain
torch operations.  The generated module has the NumPy module's contract over ``torch.Tensor``
s (``PARAMS``, ``INPUTS``, ``objective``, ``gradient``, …, ``third_derivative``) and:

* needs no autograd: every derivative is written out, and each derivative function runs under
  ``torch.no_grad()`` (inputs that require grad, such as ``nn.Parameter`` s, cost no graph
  recording; its results carry no graph); ``objective`` is left to record, a loss to train on;
* fuses, in the straight-line functions (:mod:`einderiv.emit.straight`), tanh's backward op and
  the norms of one-outer-product gradients (:mod:`einderiv.emit.torch_fuse`): at a per-sample
  network's sizes each torch op's dispatch costs more than its arithmetic; and, in those that
  return no per-sample array, takes each product with a weight through ``_rows_times``: with
  the batch axis last from 256 samples, MKL's faster way round;
* writes tanh and softmax as the helpers ``_tanh`` and ``_softmax``: torch's own op, except on
  the CPU with grad mode off on enough entries, where torch's kernels cost several times the
  same numbers from cheaper ops (tanh from expm1; a softmax along a short last axis from
  exp, amax and sum) — about half the CPU time of ``per_sample_gradient_norms`` of a tanh MLP
  at B = 1024 was the two;
* runs on the device of its inputs and in their dtype (float32 or float64): an array a function
  creates (zeros, the identity, ones, a window's selection tensor) takes the dtype and device
  of the first floating-point tensor of its first argument (``params`` or ``t``), read once
  at the top of each function that creates one (``_dtype, _device = _dtype_device(params)``);
* traces under ``torch.compile`` (no data-dependent Python branching, no in-place updates of
  inputs, no NumPy).

Where NumPy and torch differ the printer writes torch's form: ``permute`` for a transpose of
more than two axes, ``sum(dim=)``, ``tensordot(dims=)``, ``clamp(min=)`` for a maximum with a
number, ``torch.softmax``/``torch.logsumexp`` for the stable reductions, ``unfold`` for a
window view (a view, no copy), and a SymPy scalar printer with ReLU's convention
``relu'(0) = 0`` and an exact ``softplus``.
"""
from __future__ import annotations

import functools
import importlib
import sys

import sympy


def _sympy_torch_printer() -> type:
    """SymPy's PyTorch printer class, loaded without importing torch.

    ``sympy.printing.pytorch`` imports torch (about 2 s of CPU) only to read its version
    (``torch_version``), which nothing here uses: so that every command — ``codegen`` of a
    NumPy module included — starts without torch, the module is loaded with torch hidden
    (``import torch`` there then finds nothing, as where torch is not installed).  Once torch
    is imported, the printer's module is loaded as it is.
    """
    if "torch" in sys.modules or "sympy.printing.pytorch" in sys.modules:
        return importlib.import_module("sympy.printing.pytorch").TorchPrinter
    sys.modules["torch"] = None  # type: ignore[assignment]  # `import torch` raises ImportError
    try:
        return importlib.import_module("sympy.printing.pytorch").TorchPrinter
    finally:
        del sys.modules["torch"]


SympyTorchPrinter = _sympy_torch_printer()

from .block_helpers import BLOCK_HELPERS
from .kernel_arrays import Num
from .numpy import SUPPORT as NUMPY_SUPPORT
from .numpy import NumPyPrinter
from .torch_fuse import fuse, rowdot

__all__ = ["TorchPrinter", "TorchScalarPrinter"]


class TorchScalarPrinter(SympyTorchPrinter):
    """SymPy's PyTorch printer with ReLU's convention, stable sigmoid and softplus
    (:mod:`einderiv.emit.stable`), and max/min of a number.

    ``helper(name)`` records a helper function of the generated module that a body calls.
    """

    def __init__(self, settings=None, helper=None):
        super().__init__(settings)
        self.helper = helper or (lambda name: name)

    def _print(self, expr, **kwargs):
        # an irrational constant (sqrt(2), exp(-1/2)) as a float: torch.sqrt takes no Python number
        if isinstance(expr, sympy.Expr) and expr.is_number and not expr.is_Rational and expr.is_real:
            return repr(float(expr))
        return super()._print(expr, **kwargs)

    def _print_Heaviside(self, e):  # relu'(0) = 0, as autodiff frameworks choose
        return f"{self.helper('_heaviside')}({self._print(e.args[0])})"

    def _extremum(self, e, fn: str, bound: str):
        nums = [a for a in e.args if a.is_number]
        rest = [self._print(a) for a in e.args if not a.is_number]
        text = functools.reduce(lambda a, b: f"torch.{fn}({a}, {b})", rest)
        if nums:  # a bound by a number: clamp (torch.maximum needs two tensors)
            value = (max if fn == "maximum" else min)(nums)
            text = f"torch.clamp({text}, {bound}={self._print(sympy.Float(value))})"
        return text

    def _print_Relational(self, e):  # Python's operators: torch.ge(1, x) rejects a number first
        return f"({self._print(e.lhs)} {e.rel_op} {self._print(e.rhs)})"

    _print_GreaterThan = _print_StrictGreaterThan = _print_LessThan = _print_StrictLessThan = _print_Relational

    def _print_Piecewise(self, e):
        """Nested ``torch.where``; a number branch is a tensor like the body's first argument
        (its dtype and device: ``torch.where(c, 1, 0)`` would make an integer or float32 one)."""
        arrays = sorted(str(x) for x in e.free_symbols if str(x).isidentifier())  # (numbers are symbols "1")
        like = arrays[0] if arrays else None

        def branch(v):
            if not v.is_number:
                return self._print(v)
            return f"torch.full_like({like}, {float(v)})" if like else repr(float(v))
        *rest, (last, cond) = e.args
        out = branch(last) if cond == sympy.true else branch(sympy.nan)
        if cond != sympy.true:
            rest.append((last, cond))
        for value, c in reversed(rest):
            out = f"torch.where({self._print(c)}, {branch(value)}, {out})"
        return out

    def _print_Max(self, e):
        return self._extremum(e, "maximum", "min")

    def _print_Min(self, e):
        return self._extremum(e, "minimum", "max")

    def _print_Sigmoid(self, e):  # torch.sigmoid is exact at saturation
        return f"torch.sigmoid({self._print(e.args[0])})"

    def _print_Softplus(self, e):
        return f"{self.helper('_softplus')}({self._print(e.args[0])})"

    def _print_tanh(self, e):  # torch's CPU tanh costs ~3 expm1s an entry (see _tanh)
        return f"{self.helper('_tanh')}({self._print(e.args[0])})"

    def _print_log(self, e):  # log(1 + exp(x)) overflows for large x; logaddexp does not
        x = sympy.Wild("x")
        m = e.args[0].match(1 + sympy.exp(x))
        if m is not None:
            return f"{self.helper('_softplus')}({self._print(m[x])})"
        return f"torch.log({self._print(e.args[0])})"  # SymPy's printer has no _print_log

    def _print_erfc(self, e):  # SymPy's printer knows torch.erf only
        return f"torch.erfc({self._print(e.args[0])})"


HELPERS = {
    "_dtype_device": '''def _dtype_device(d):
    """The dtype and device of a call's tensors: those of the first floating-point tensor in the
    dict ``d`` or the tuple ``d`` (a list of tensors counts by its first); the arrays a function
    creates take them."""
    for v in (d.values() if isinstance(d, dict) else d):
        x = v[0] if isinstance(v, (list, tuple)) and v else v
        if isinstance(x, torch.Tensor) and x.is_floating_point():
            return x.dtype, x.device
    return torch.get_default_dtype(), torch.device("cpu")''',
    # torch's CPU kernels for tanh (float32 and float64) and for a softmax along a short last axis
    # cost several times the same numbers from cheaper ops (measured on torch 2.13, one thread:
    # tanh of 32k float64 entries 150 µs, the expm1 form 75 µs; softmax of (1024, 10) 130 µs, the
    # four ops 40 µs).  Each keeps torch's op where the cheaper form does not pay: off the CPU
    # (one fused kernel there), with autograd recording (the in-place ops would break backward),
    # on few entries (the extra ops' dispatch costs more), in other dtypes.
    "_tanh": '''def _tanh(x):
    """tanh elementwise.  On the CPU with grad mode off, from 4096 float32/float64 entries, as
    e / (e + 2) with e = expm1(2 min(x, 20)) (tanh(20) rounds to 1): within 2 ulp of torch.tanh,
    relative, at about half its CPU time."""
    if x.numel() < 4096 or torch.is_grad_enabled() or not x.is_cpu or x.dtype not in (torch.float32, torch.float64):
        return torch.tanh(x)
    e = torch.clamp(x, max=20.0).mul_(2).expm1_()
    return e.div_(e + 2)''',
    "_softmax": '''def _softmax(a, dim):
    """Softmax along ``dim``.  Along the last axis of a transposed matrix (the batch axis last in
    memory), torch's softmax along the first axis of its transpose (the strided kernel, several
    times faster there than a copy and the last-axis one).  On the CPU with grad mode off, from
    1024 float32/float64 entries along a last axis shorter than 16, as exp(a - max) / sum (within
    5 ulp of torch.softmax, relative): torch's last-axis kernel is slow on short rows."""
    if a.dim() == 2 and dim in (1, -1) and not a.is_contiguous() and a.T.is_contiguous():
        return torch.softmax(a.T, dim=0).T
    if a.numel() < 1024 or torch.is_grad_enabled() or not a.is_cpu or dim not in (-1, a.dim() - 1) or \\
            a.shape[-1] >= 16 or a.dtype not in (torch.float32, torch.float64):
        return torch.softmax(a, dim=dim)
    e = torch.exp(a - torch.amax(a, dim=-1, keepdim=True))
    return e.div_(torch.sum(e, dim=-1, keepdim=True))''',
    "_rows_times": '''def _rows_times(x, w):
    """x @ w for a (B, k) matrix x and a (k, n) matrix w.  From 256 rows computed with the batch
    axis last, (w.T @ x.T).T: MKL's double-precision product is 1.1-2.2x faster that way round at
    these shapes, and the result (a transposed view) is the next such product's contiguous operand."""
    if x.shape[0] < 256:
        return x @ w
    return (w.T @ x.T).T''',
    "_rownorm": '''def _rownorm(u):
    """The Euclidean norm of each row of ``u`` (along the last axis).  torch's vector_norm is
    slow along a strided axis (150 µs for a transposed (1024, 32) view against 7 µs contiguous);
    there, the square root of the row-wise dot product (the same sum of squares, 9 µs)."""
    if u.is_contiguous():
        return torch.linalg.vector_norm(u, dim=-1)
    return torch.linalg.vecdot(u, u).sqrt()''',
    "_heaviside": '''def _heaviside(x):
    """1 where x > 0, else 0 (relu'(0) = 0), in x's dtype."""
    return (x > 0).to(x.dtype)''',
    "_softplus": '''def _softplus(x):
    """log(1 + exp(x)), exact and without overflow."""
    return torch.logaddexp(x, torch.zeros_like(x))''',
    "_argmax": '''def _argmax(a, axis):
    """The weights of ∂ max along ``axis``: 1 at the maximiser; 1/m at each of m tied ones."""
    e = (a == torch.amax(a, dim=axis, keepdim=True)).to(a.dtype)
    return e / torch.sum(e, dim=axis, keepdim=True)''',
    "_argmin": '''def _argmin(a, axis):
    """The weights of ∂ min along ``axis``: 1 at the minimiser; 1/m at each of m tied ones."""
    e = (a == torch.amin(a, dim=axis, keepdim=True)).to(a.dtype)
    return e / torch.sum(e, dim=axis, keepdim=True)''',
    "_inv": '''def _inv(a):
    """The inverse of each square matrix on the last two axes (an error if one is singular)."""
    return torch.linalg.inv(a)''',
    "_det": '''def _det(a):
    """The determinant of each square matrix on the last two axes."""
    return torch.linalg.det(a)''',
    "_logdet": '''def _logdet(a):
    """log det of each square matrix on the last two axes, from slogdet; NaN where det <= 0."""
    sign, logabs = torch.linalg.slogdet(a)
    return torch.where(sign > 0, logabs, torch.full_like(logabs, float("nan")))''',
    "_window_view": '''def _window_view(a, size, axis, stride, count):
    """View of `a` with axis `axis` (positions u) split into (t, tap), the tap axis last:
    view[..., t, ..., tap] = a[..., stride*t + tap, ...] for t < count (valid padding).  No copy."""
    return a.unfold(axis, size, stride).narrow(axis, 0, count)''',
    "_shift_view": '''def _shift_view(a, size, axis, stride, count, dilation, offset, lo, hi):
    """View of `a` with axis `axis` split into (t, tap), the tap axis last:
    view[..., t, ..., tap] = a[..., stride*t + dilation*tap + offset, ...] for t < count, zero
    outside `a` (`lo`, `hi` zeros before and after the axis); size 0: no tap axis."""
    if lo or hi:
        shape = list(a.shape)
        shape[axis] = lo
        before = a.new_zeros(shape)
        shape[axis] = hi
        a = torch.cat([before, a, a.new_zeros(shape)], dim=axis)
    taps = max(size, 1)
    v = a.unfold(axis, abs(dilation) * (taps - 1) + 1, 1)
    first = lo + offset + min(0, dilation * (taps - 1))
    v = v.narrow(axis, first, stride * (count - 1) + 1)[(slice(None),) * axis + (slice(None, None, stride),)]
    v = v[..., ::dilation] if dilation > 0 else v.flip(-1)[..., ::-dilation]
    return v if size else v[..., 0]''',
    "_shift_array": '''def _shift_array(n, count, size, stride, dilation, offset, dtype, device):
    """S[u, t, tap] = 1 where u = stride*t + dilation*tap + offset (S[u, t] for size 0): the
    selection tensor as a small 0/1 array (never the circulant matrix)."""
    u = torch.arange(n, device=device)[:, None, None]
    t = torch.arange(count, device=device)[:, None]
    k = torch.arange(max(size, 1), device=device)
    s = (u == stride * t + dilation * k + offset).to(dtype)
    return s if size else s[..., 0]''',
    "_shift_scatter": '''def _shift_scatter(g, n, axis, size, stride, dilation, offset):
    """The transpose of _shift_view: out[..., u, ...] = the sum of g[..., t, tap, ...] over
    stride*t + dilation*tap + offset = u < n (the tap axis after t; size 0: none), one slice per tap."""
    if not size:
        g = g.unsqueeze(axis + 1)
    count = g.shape[axis]
    shape = list(g.shape)
    del shape[axis + 1]
    shape[axis] = n
    out = g.new_zeros(shape)
    for k in range(g.shape[axis + 1]):
        first = offset + dilation * k  # u at t = 0
        lo = max(0, -(first // stride))
        hi = min(count - 1, (n - 1 - first) // stride)
        if lo <= hi:
            into = (slice(None),) * axis + (slice(stride * lo + first, stride * hi + first + 1, stride),)
            part = g.select(axis + 1, k)[(slice(None),) * axis + (slice(lo, hi + 1),)]
            out[into] += part
    return out''',
    "_window_array": '''def _window_array(n, count, size, stride, dtype, device):
    """S[u, t, tap] = 1 where u = stride*t + tap: the selection tensor of index arithmetic as a
    small 0/1 array, for a window not contracted with one tensor on u (never the circulant matrix)."""
    u = torch.arange(n, device=device)[:, None, None]
    t = torch.arange(count, device=device)[:, None]
    k = torch.arange(size, device=device)
    return (u == stride * t + k).to(dtype)''',
    **BLOCK_HELPERS,
}

SUPPORT = {
    "_Tensors": NUMPY_SUPPORT["_Tensors"],
    # a block is transposed by permute, and made in the inputs' dtype and device (a block that
    # reads no tensor, a zero one, cannot tell them; for the others .to is no copy)
    "third_derivatives": NUMPY_SUPPORT["third_derivatives"].replace(
        "    t = _Tensors(", "    _dtype, _device = _dtype_device(params)\n    t = _Tensors(").replace(
        "np.transpose(block, axes)", "block.permute(axes).to(dtype=_dtype, device=_device)"),
    "third_derivative": NUMPY_SUPPORT["third_derivative"],
    "expand_factors": '''def expand_factors(name, terms):
    """Rebuild the per-sample gradient of `name` from gradient_factors(...)[name] (for checking)."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    out = "Z" + letters[:len(PARAMS[name])]
    total = 0.0
    for term, axes in zip(terms, GRADIENT_FACTOR_AXES[name]):
        subs = ",".join("Z" + "".join(letters[a] for a in ax) for ax in axes)
        total = total + torch.einsum(subs + "->" + out, *term)
    return total''',
}


class TorchPrinter(NumPyPrinter):
    """Prints a lowered kernel module as PyTorch source (see the module docstring)."""

    prelude = "import torch"
    lib = "torch"
    helpers = HELPERS
    support = SUPPORT
    buffers = False  # hessian returns its blocks, (b, a) as the transpose of (a, b)
    #: the keyword arguments an array creation passes
    created = "dtype=_dtype, device=_device"

    def __init__(self, settings=None):
        super().__init__(settings)
        self._creates = False  # whether the function being printed creates an array

    def scalar_printer(self):
        return TorchScalarPrinter({"allow_unknown_functions": False}, helper=self.helper)

    def create(self, fn: str, *args) -> str:
        """``torch.fn(args, dtype=_dtype, device=_device)``: an array in the inputs' dtype and device."""
        self._creates = True
        return self.call(fn, *args, self.created)

    def preamble(self, f) -> list:
        if not self._creates:
            return []
        return [f"_dtype, _device = {self.helper('_dtype_device')}({self.inputs_of(f)})"]

    def _print_Support(self, s) -> str:
        if s.name == "third_derivatives":  # reads the inputs' dtype and device
            self.helper("_dtype_device")
        return super()._print_Support(s)

    def _print_Module(self, m) -> str:
        return super()._print_Module(fuse(m))  # torch's cheaper spellings in the straight-line functions

    def _print_Function(self, f) -> str:
        """A derivative function of the contract runs under ``torch.no_grad()``: inputs that
        require grad (``nn.Parameter`` s) make autograd record nothing; ``objective`` records."""
        self._creates = False
        if f.name.startswith("_") or f.name == "objective" or f.args[:2] != ("params", "data"):
            return super()._print_Function(f)
        inner = self.indent * 2
        body = [inner + line for st in f.prologue + f.body for line in self._print(st)]
        head = [f"def {f.name}({', '.join(f.args)}):", f'{self.indent}"""{f.doc}"""',
                f"{self.indent}with torch.no_grad():"]
        return "\n".join(head + [inner + line for line in self.preamble(f)] + body)

    # -- creation -------------------------------------------------------------------------
    def _print_Eye(self, e) -> str:
        return self.create("eye", str(e.n))

    def _print_Ones(self, e) -> str:
        return self.create("ones", str(e.n))

    def _print_Zeros(self, e) -> str:
        return self.create("zeros", self._print(e.shape))

    def _print_ShiftArray(self, e) -> str:
        self._creates = True
        return (f"{self.helper('_shift_array')}({e.n}, {e.count}, {e.size}, {e.stride}, {e.dilation}, {e.offset}, "
                "_dtype, _device)")

    def _print_SelectionArray(self, e) -> str:
        self._creates = True
        return f"{self.helper('_window_array')}({e.n}, {e.count}, {e.size}, {e.stride}, _dtype, _device)"

    def broadcast(self, text: str, operands: list, constant: bool) -> str:
        shape = self.call("broadcast_shapes", *(f"{x}.shape" for x in operands))
        if constant:
            return self.create("full", shape, text)
        return self.call("broadcast_to", text, shape)

    # -- operations --------------------------------------------------------------------
    def _print_Transpose(self, e) -> str:
        if len(e.perm) == 2:
            return f"{self._print(e.x)}.T"
        return f"{self._print(e.x)}.permute({', '.join(map(str, e.perm))})"

    def _print_SumAxes(self, e) -> str:
        dim = str(e.axes[0]) if len(e.axes) == 1 else str(e.axes)
        return f"{self._print(e.x)}.sum(dim={dim})"

    def _print_Subscript(self, e) -> str:
        u = rowdot(e)  # (u[..., None, :] @ w[..., None])[..., 0, 0]: one op, not four
        if u is not None:
            return self.call("linalg.vecdot", self._print(u[0]), self._print(u[1]))
        return super()._print_Subscript(e)

    def _print_TensorDot(self, e) -> str:
        ka, kb = e.axes
        return self.call("tensordot", self._print(e.a), self._print(e.b), f"dims=({list(ka)}, {list(kb)})")

    def _print_Einsum(self, e) -> str:  # torch plans the contraction itself (opt_einsum when installed)
        return self.call("einsum", f'"{e.subscripts}"', *(self._print(o) for o in e.operands))

    def _print_Lib(self, e) -> str:
        args = [self._print(a) for a in e.args]
        if e.fn == "shape":
            return f"{args[0]}.shape"
        if e.fn in ("maximum", "minimum") and any(isinstance(a, Num) for a in e.args):
            num = next(a for a in e.args if isinstance(a, Num))
            other = next(self._print(a) for a in e.args if a is not num)
            bound = "min" if e.fn == "maximum" else "max"
            return self.call("clamp", other, f"{bound}={self._print(Num(float(num.value)))}")
        return self.call(e.fn, *args)

    def _print_Reduction(self, e) -> str:
        if e.kind.startswith("arg"):
            return f"{self.helper('_' + e.kind)}({self._print(e.x)}, axis={e.axis})"
        if e.kind == "softmax":
            return f"{self.helper('_softmax')}({self._print(e.x)}, {e.axis})"
        kind = {"max": "amax", "min": "amin"}.get(e.kind, e.kind)
        return self.call(kind, self._print(e.x), f"dim={e.axis}")
