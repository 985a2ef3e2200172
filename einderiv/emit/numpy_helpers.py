"""The helper functions a generated NumPy module may define, by name: the printers record the
ones a module's bodies call (``helper(name)``), and only those are written into it."""
from __future__ import annotations

from .block_helpers import BLOCK_HELPERS
from .numpy_buffer import BUFFER_HELPERS

__all__ = ["HELPERS"]

HELPERS = {
    "_sigmoid": '''def _sigmoid(x):
    """The logistic function 1/(1 + exp(-x)), without overflow: exp(-log(1 + exp(-x)))."""
    return np.exp(-np.logaddexp(0, -x))''',
    # NumPy has no erf; math.erf entry by entry is exact to double precision (no SciPy needed)
    "_erf": '''def _erf(x):
    """The error function elementwise: math.erf on each entry (NumPy has none)."""
    import math
    return np.vectorize(math.erf, otypes=[float])(x)''',
    "_erfc": '''def _erfc(x):
    """The complementary error function elementwise: math.erfc on each entry (NumPy has none)."""
    import math
    return np.vectorize(math.erfc, otypes=[float])(x)''',
    "_softmax": '''def _softmax(a, axis):
    """Softmax along ``axis``, shifted by the maximum for stability."""
    e = np.exp(a - np.max(a, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)''',
    "_logsumexp": '''def _logsumexp(a, axis):
    """log Σ exp(a) along ``axis``, shifted by the maximum for stability."""
    m = np.max(a, axis=axis, keepdims=True)
    return np.squeeze(m, axis) + np.log(np.sum(np.exp(a - m), axis=axis))''',
    "_max": '''def _max(a, axis):
    """The maximum along ``axis``."""
    return np.max(a, axis=axis)''',
    "_min": '''def _min(a, axis):
    """The minimum along ``axis``."""
    return np.min(a, axis=axis)''',
    "_argmax": '''def _argmax(a, axis):
    """The weights of ∂ max along ``axis``: 1 at the maximiser; 1/m at each of m tied ones."""
    e = (a == np.max(a, axis=axis, keepdims=True)).astype(a.dtype)
    return e / np.sum(e, axis=axis, keepdims=True)''',
    "_argmin": '''def _argmin(a, axis):
    """The weights of ∂ min along ``axis``: 1 at the minimiser; 1/m at each of m tied ones."""
    e = (a == np.min(a, axis=axis, keepdims=True)).astype(a.dtype)
    return e / np.sum(e, axis=axis, keepdims=True)''',
    "_inv": '''def _inv(a):
    """The inverse of each square matrix on the last two axes (LinAlgError if one is singular)."""
    return np.linalg.inv(a)''',
    "_det": '''def _det(a):
    """The determinant of each square matrix on the last two axes."""
    return np.linalg.det(a)''',
    "_logdet": '''def _logdet(a):
    """log det of each square matrix on the last two axes, from slogdet; NaN where det <= 0."""
    sign, logabs = np.linalg.slogdet(a)
    return np.where(sign > 0, logabs, np.nan)''',
    "_window_view": '''def _window_view(a, size, axis, stride, count):
    """View of `a` with axis `axis` (positions u) split into (t, tap), the tap axis last:
    view[..., t, ..., tap] = a[..., stride*t + tap, ...] for t < count (valid padding).  No copy."""
    v = np.lib.stride_tricks.sliding_window_view(a, size, axis=axis)
    return v[(slice(None),) * axis + (slice(0, stride * (count - 1) + 1, stride),)]''',
    "_window_array": '''def _window_array(n, count, size, stride):
    """S[u, t, tap] = 1 where u = stride*t + tap: the selection tensor of index arithmetic as a
    small 0/1 array, for a window not contracted with one tensor on u (never the circulant matrix)."""
    s = np.zeros((n, count, size))
    t, k = np.meshgrid(np.arange(count), np.arange(size), indexing="ij")
    s[stride * t + k, t, k] = 1.0
    return s''',
    "_shift_view": '''def _shift_view(a, size, axis, stride, count, dilation, offset, lo, hi):
    """View of `a` with axis `axis` split into (t, tap), the tap axis last:
    view[..., t, ..., tap] = a[..., stride*t + dilation*tap + offset, ...] for t < count, zero
    outside `a` (`lo`, `hi` zeros padded before and after the axis); size 0: no tap axis."""
    if lo or hi:
        pad = [(0, 0)] * a.ndim
        pad[axis] = (lo, hi)
        a = np.pad(a, pad)
    taps = max(size, 1)
    v = np.lib.stride_tricks.sliding_window_view(a, abs(dilation) * (taps - 1) + 1, axis=axis)
    first = lo + offset + min(0, dilation * (taps - 1))
    v = v[(slice(None),) * axis + (slice(first, first + stride * (count - 1) + 1, stride),)][..., ::dilation]
    return v if size else v[..., 0]''',
    "_shift_array": '''def _shift_array(n, count, size, stride, dilation, offset):
    """S[u, t, tap] = 1 where u = stride*t + dilation*tap + offset (S[u, t] for size 0): the
    selection tensor as a small 0/1 array (never the circulant matrix)."""
    u = np.arange(n)[:, None, None]
    t = np.arange(count)[:, None]
    s = (u == stride * t + dilation * np.arange(max(size, 1)) + offset).astype(float)
    return s if size else s[..., 0]''',
    "_shift_scatter": '''def _shift_scatter(g, n, axis, size, stride, dilation, offset):
    """The transpose of _shift_view: out[..., u, ...] = the sum of g[..., t, tap, ...] over
    stride*t + dilation*tap + offset = u < n (the tap axis after t; size 0: none), one slice per tap."""
    if not size:
        g = np.expand_dims(g, axis + 1)
    count = g.shape[axis]
    shape = list(g.shape)
    del shape[axis + 1]
    shape[axis] = n
    out = np.zeros(shape, dtype=g.dtype)
    for k in range(g.shape[axis + 1]):
        first = offset + dilation * k  # u at t = 0
        lo = max(0, -(first // stride))
        hi = min(count - 1, (n - 1 - first) // stride)
        if lo <= hi:
            into = (slice(None),) * axis + (slice(stride * lo + first, stride * hi + first + 1, stride),)
            part = g[(slice(None),) * axis + (slice(lo, hi + 1), k)]
            out[into] += part
    return out''',
    **BUFFER_HELPERS,
    **BLOCK_HELPERS,
}
