"""The NumPy helpers of a Hessian assembled in one P × P buffer (:mod:`einderiv.emit.kernel_buffer`).

``hessian(params, data, blocks=None, out=None)`` of a generated NumPy module writes every block
it is asked for into one dense array ``H`` (``out`` when given: a P × P array or a flat one of P²
entries, reused between calls so that no fresh gigabyte array is paged in; otherwise a new
``np.empty``).  The rows and columns of ``H`` are the parameters in ``PARAMS`` order, each
flattened in C order — of a module without families, only the parameters the requested blocks
name (``_hessian_plan``: all of them by default), so that the (U, U) block alone is a U × U array.  A block
(a, b) with a at or before b is computed into its view of ``H``; the block (b, a) is its
transpose, copied tile by tile.  The dominant terms of a block between two dense layers,
Σ_B G[B,j,k] a[B,i] b[B,l], are a matmul per row chunk of j that writes straight into ``H``
(``_outer_into``; the terms that share a summed before it): no block-sized temporary, no
transpose.
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
    "_outer_into": '''def _outer_into(v, a, terms, add, half=False):
    """v[j,i,k,l] (+)= Σ_B a[B,i] R[B,j,k,l], where R sums scale G[B,j,k] b[B,l] (swap: scale
    G[B,j,l] b[B,k]) over the terms (G, b, scale, swap): for a chunk of j at a time, the rows
    R[j,B,(k,l)] summed in one reused buffer, then one matmul (I × B)·(B × K·L) per j that
    writes into v (no temporary of v's size; terms that share a share the matmul).  half: R is
    symmetric (one term, G[B,j,k] = G[B,k,j], b is a): only the columns k ≥ j are multiplied,
    the rows below then copied from their transposes, in tiles of whole j."""
    J, I, K, L = v.shape
    nb = a.shape[0]
    w = v.view()
    w.shape = (J, I, K * L)
    aT = a.T
    rows = [(np.ascontiguousarray(G.transpose(1, 0, 2)), b * scale, swap) for G, b, scale, swap in terms]
    step = max(1, min(J, (1 << 16) // max(1, nb * K * L)))
    buf = np.empty((len(rows), step, nb, K, L), dtype=np.result_type(a, *[x for r in rows for x in r[:2]]))
    for j0 in range(0, J, step):
        j1 = min(J, j0 + step)
        k0 = j0 if half else 0
        for n, (Gt, b, swap) in enumerate(rows):
            if swap:
                np.multiply(b[None, :, k0:, None], Gt[j0:j1, :, None, :], out=buf[n, :j1 - j0, :, :K - k0])
            else:
                np.multiply(Gt[j0:j1, :, k0:, None], b[None, :, None, :], out=buf[n, :j1 - j0, :, :K - k0])
            if n:
                buf[0, :j1 - j0, :, :K - k0] += buf[n, :j1 - j0, :, :K - k0]
        W = buf[0, :j1 - j0, :, :K - k0].reshape(j1 - j0, nb, (K - k0) * L)
        if add:
            w[j0:j1, :, k0 * L:] += np.matmul(aT, W)
        else:
            np.matmul(aT, W, out=w[j0:j1, :, k0 * L:])
    if half:
        m = w.view()
        m.shape = (J * I, K * L)
        t = max(1, 256 // I)
        for r0 in range(0, J, t):
            r1 = min(J, r0 + t)
            for c0 in range(0, r0, t):  # tiles left of the diagonal, from the tiles above it
                c1 = min(r0, c0 + t)
                m[r0 * I:r1 * I, c0 * L:c1 * L] = m[c0 * I:c1 * I, r0 * L:r1 * L].T
            for r in range(r0 + 1, r1):  # within the diagonal tile
                m[r * I:(r + 1) * I, r0 * L:r * L] = m[r0 * I:r * I, r * L:(r + 1) * L].T''',
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
