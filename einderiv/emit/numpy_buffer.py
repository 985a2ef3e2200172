"""The NumPy helpers of a Hessian assembled in one P × P buffer (:mod:`einderiv.emit.kernel_buffer`).

``hessian(params, data, blocks=None, out=None)`` of a generated NumPy module writes every block
it is asked for into one dense array ``H`` (``out`` when given: a P × P array or a flat one of P²
entries, reused between calls so that no fresh gigabyte array is paged in; otherwise a new
``np.empty``).  The rows and columns of ``H`` are the parameters in ``PARAMS`` order, each
flattened in C order — of a module without families, only the parameters the requested blocks
name (``_hessian_plan``: all of them by default), so that the (U, U) block alone is a U × U array.  A block
(a, b) with a at or before b is computed into its view of ``H``; the block (b, a) is its
transpose, copied tile by tile.  The dominant term of a block between two dense layers,
Σ_B G[B,j,k] a[B,i] b[B,l], is a matmul per row chunk of j that writes straight into ``H``
(``_outer_into``): no block-sized temporary, no transpose.
"""
from __future__ import annotations

#: helper name -> source (merged into :data:`einderiv.emit.numpy_helpers.HELPERS`)
BUFFER_HELPERS = {
    "_hessian_out": '''def _hessian_out(out, n, like):
    """The n × n buffer of a Hessian: `out` (an n × n array, or a flat one of n² entries, seen as
    n × n without a copy), or a new uninitialised array in the dtype of `like`."""
    if out is None:
        dtype = getattr(like, "dtype", None)  # a float array's own (np.result_type costs microseconds)
        return np.empty((n, n), dtype=dtype if dtype is not None and dtype.kind in "fc" else np.result_type(like, 1.0))
    if out.shape not in ((n, n), (n * n,)):
        raise ValueError(f"out has shape {out.shape}; expected ({n}, {n}) or ({n * n},)")
    view = out.view()
    view.shape = (n, n)  # raises if that needs a copy
    return view''',
    "_hessian_size": '''def _hessian_size(rows):
    """The side of the Hessian buffer with these rows (_hessian_plan)."""
    return max((end for _, end in rows.values()), default=0)''',
    "_block_view": '''def _block_view(H, r0, r1, c0, c1, shape):
    """H[r0:r1, c0:c1] seen with the block's shape (a view: raises rather than copy)."""
    view = H[r0:r1, c0:c1].view()
    view.shape = shape
    return view''',
    "_outer_into": '''def _outer_into(v, G, a, b, scale, add, swap=False, half=False):
    """v[j,i,k,l] (+)= scale Σ_B G[B,j,k] a[B,i] b[B,l] (swap: G[B,j,l] b[B,k]): for a chunk of j
    at a time, the rows W[j,B,(k,l)] = G[B,j,k] b[B,l] in one reused buffer, then one matmul
    (I × B)·(B × K·L) per j that writes into v (no temporary of v's size).  half: the term is
    symmetric (G[B,j,k] = G[B,k,j], a is b): only the columns k ≥ j are multiplied, the rest
    copied from their transposes."""
    J, I, K, L = v.shape
    nb = G.shape[0]
    w = v.view()
    w.shape = (J, I, K * L)
    aT = (a * scale).T
    Gt = np.ascontiguousarray(G.transpose(1, 0, 2))
    step = max(1, min(J, (1 << 16) // max(1, nb * K * L)))
    buf = np.empty((step, nb, K, L), dtype=np.result_type(G, b))
    for j0 in range(0, J, step):
        j1 = min(J, j0 + step)
        k0 = j0 if half else 0
        W = buf[:j1 - j0, :, :K - k0]
        if swap:
            np.multiply(b[None, :, k0:, None], Gt[j0:j1, :, None, :], out=W)
        else:
            np.multiply(Gt[j0:j1, :, k0:, None], b[None, :, None, :], out=W)
        W = W.reshape(j1 - j0, nb, (K - k0) * L)
        if add:
            w[j0:j1, :, k0 * L:] += np.matmul(aT, W)
        else:
            np.matmul(aT, W, out=w[j0:j1, :, k0 * L:])
        if half and j0:
            m = w.view()
            m.shape = (J * I, K * L)
            m[j0 * I:j1 * I, :j0 * L] = m[:j0 * I, j0 * L:j1 * L].T''',
    "_gram_into": '''def _gram_into(v, x, w, scale, add):
    """v (+)= scale Σ_B w[B] x[B,i] x[B,j], with scale · w ≥ 0 (proved at generation time): a = √(scale w) x,
    v = aᵀa — a matrix times its own transpose, which NumPy's matmul hands to BLAS's syrk."""
    a = np.sqrt(w * scale)[:, None] * x
    if add:
        v += a.T @ a
    else:
        np.matmul(a.T, a, out=v)''',
    "_add_into": '''def _add_into(v, value, scale, add):
    """v (+)= scale · value (value broadcast to v's shape)."""
    if add:
        v += value * scale if scale != 1 else value
    else:
        np.multiply(value, scale, out=v)''',
    "_diagonal_view": '''def _diagonal_view(v, x, y):
    """The view of v on its diagonal x = y (axis y dropped; axis x steps along both)."""
    strides = list(v.strides)
    strides[x] += strides[y]
    del strides[y]
    shape = list(v.shape)
    del shape[y]
    return np.lib.stride_tricks.as_strided(v, shape, strides, writeable=True)''',
    "_mirror": '''def _mirror(H, r0, r1, c0, c1, tile=256):
    """H[c0:c1, r0:r1] = H[r0:r1, c0:c1].T, copied in tiles (cache-friendly)."""
    for i in range(r0, r1, tile):
        i1 = min(r1, i + tile)
        for j in range(c0, c1, tile):
            j1 = min(c1, j + tile)
            H[j:j1, i:i1] = H[i:i1, j:j1].T''',
}
