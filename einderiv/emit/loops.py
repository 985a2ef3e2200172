"""Loops over a family's members in the generated NumPy module (backpropagation through time).

A recurrent network is derived unrolled — nodes ``z_h(1) … h(T)``, adjoints ``adj[h(1)] …`` — and
:mod:`einderiv.fold` recognises members that are equal up to a label shift.  Here that recognition
drives code generation: the gradient path of the module is written *once per step*, as a loop over
the label, instead of once per member, so its size does not grow with T and its cost is linear in T.

**Step bodies.**  A list of definitions in dependency order (the nodes, or the quantities a gradient
needs) is cut into families (:func:`einderiv.fold.abstract`: name and expression equal once written
relative to the member's own label).  Families whose members depend on each other are merged into
one *step body* — e.g. ``adj[p(t)], adj[r(t)], adj[z_r(t)], adj[h(t)], adj[z_h(t)]`` — which runs
over the labels all of them share (the longest contiguous run), ascending when a step reads earlier
labels (the forward pass), descending when it reads later ones (the backward pass: ``adj[h(t)]``
reads ``adj[z_h(t+1)]``).  Members outside that run (base cases such as ``adj[h(T)] = U adj[p]``,
a first step whose ``W h(0)`` term is dropped) and unlabelled definitions stay straight-line code
before or after the loop, as their dependencies order them.  Anything that cannot be ordered that way
falls back to straight-line code, which is always correct.

**Generated code.**  Per-step arrays live in the dict ``t`` under their member names, the label
written as an f-string of the loop variable::

    for k in range(3, 0, -1):
        # adj_h_k[j] = Σ_c W[c,j] adj_z_h_kp1[c]
        adj_z_h_kp1 = t[f"adj[z_h({k+1})]"]
        adj_h_k = adj_z_h_kp1 @ W
        t[f"adj[h({k})]"] = adj_h_k
        ...

A shared weight's gradient Σ_t δ[z_h(t)] ⊗ h(t−1) (:func:`einderiv.fold.fold_terms`) is a loop
that accumulates one outer product per step.

**Which functions loop.**  ``_forward``, ``gradient``, ``per_sample_gradient``,
``gradient_factors`` (one factor tuple appended per step), ``per_sample_gradient_norms`` (a double
loop over pairs of steps: O(T²) small contractions, constant code) and ``hvp`` (forward tangents
ascending, R-adjoints descending).  ``hessian``, ``ggn_diagonal`` and ``third_derivative`` stay
unrolled: their blocks pair two labels (``jac[h(3),z_h(1)]``) and are O(T²) blocks anyway.  The
module contract (function names, ``data["x(1)"]`` keys, ``PARAMS``) is the one of
:mod:`einderiv.emit.numpy`.
"""
from __future__ import annotations

import heapq
import re

from ..analysis.factor import as_terms, factored
from ..calculus.simplify import term_key
from ..analysis.fold import abstract, fold_terms, shift_labels, tensor_labels
from ..ir import Apply, Const, LogSumExp, Prod, Ref, Softmax, Sym, fresh, is_zero, labels_of, refs, rename
from .numpy import _Generator, _Letters, _Scope, _join, _qname, _show

_PLACEHOLDER = "#"


def has_families(derivation) -> bool:
    """Whether any node of the derivation is a family member (a labelled name)."""
    return any(labels_of(n.name) for n in derivation.nodes)


# ------------------------------------------------------------------ names
def fstring_key(name, syms: tuple[str, ...]) -> str:
    """The ``t[...]`` lookup of a tensor: ``t["h(3)"]``, or ``t[f"h({k-1})"]`` for ``h(k-1)``."""
    def field(lab) -> str:
        return "({" + str(lab) + "})" if isinstance(lab, Sym) and lab.symbol in syms else f"({lab})"

    text, out = str(name), name.text(field)
    return f't[f"{out}"]' if out != text else f't["{text}"]'


def local_hint(name, syms: tuple[str, ...]) -> str:
    """A variable name for a tensor: ``h(k-1)`` → ``h_km1``, ``adj[z_h(k+1)]`` → ``adj_z_h_kp1``."""
    def part(lab) -> str:
        if not (isinstance(lab, Sym) and lab.symbol in syms):
            return f"({lab})"
        off = lab.offset
        return "_" + lab.symbol + ("" if not off else ("m" if off < 0 else "p") + str(abs(off)))

    return _qname(name, part)


# --------------------------------------------------------------- planning
def schedule(defs, batched=lambda name: True) -> list[tuple]:
    """``defs`` ((name, indices, expr) in dependency order) as items ``("def", i)`` and
    ``("loop", labels in iteration order, body)`` — body: the def indices at the first label, in
    dependency order; every member of the loop's families at those labels is covered by it.
    ``batched(name)`` tells whether a tensor carries the batch axis: members whose operands differ
    in that (``W h(0)`` with a learnable ``h(0)``, ``W h(1)``) are not one family."""
    n = len(defs)
    pos = {d[0]: i for i, d in enumerate(defs)}
    lab = [labels_of(d[0])[0] if labels_of(d[0]) else None for d in defs]
    deps = [sorted({pos[r.name] for r in refs(e) if r.name in pos}) for _, _, e in defs]
    fam, members = {}, {}
    for i, (name, idx, expr) in enumerate(defs):
        if lab[i] is None:
            continue
        key = (str(shift_labels(name, lab[i], _PLACEHOLDER)),
               term_key(abstract(expr, lab[i], _PLACEHOLDER), idx), _pattern(expr, lab[i], batched))
        fam[i] = key
        members.setdefault(key, {})[lab[i]] = i
    parent = {k: k for k, m in members.items() if len(m) > 1}
    direction = dict.fromkeys(parent, 0)  # +1 ascending (reads earlier labels), -1 descending

    def find(k):
        while parent[k] != k:
            k = parent[k]
        return k

    edges = [(lab[j] - lab[i], fam[i], fam[j]) for i in fam for j in deps[i]
             if j in fam and fam[i] in parent and fam[j] in parent]
    for off, a, b in sorted(edges, key=lambda e: e[0] == 0):  # recurrences fix the direction first
        ra, rb = find(a), find(b)
        dirs = {d for d in ((off < 0) - (off > 0), direction[ra], direction[rb]) if d}
        if len(dirs) > 1:
            continue  # a forward and a backward recurrence: separate loops
        if ra != rb:
            parent[rb] = ra
        direction[ra] = dirs.pop() if dirs else 0
    groups: dict = {}
    for k in parent:
        groups.setdefault(find(k), []).append(k)
    loops = []
    for root, keys in groups.items():
        common = set.intersection(*(set(members[k]) for k in keys))
        run = _longest_run(sorted(common))
        if len(run) < 2:
            continue
        order = run if direction[root] >= 0 else run[::-1]
        covered = {members[k][lb] for k in keys for lb in run}
        body = sorted(members[k][order[0]] for k in keys)
        loops.append((order, body, covered))
    return _order(n, deps, loops)


def _pattern(e, ref: int, batched) -> tuple:
    """Which of ``e``'s tensors (written relative to ``ref``) carry the batch axis."""
    return tuple(sorted({(str(shift_labels(r.name, ref, _PLACEHOLDER)), bool(batched(r.name))) for r in refs(e)}))


def _longest_run(labels: list[int]) -> list[int]:
    best, cur = [], []
    for lb in labels:
        cur = cur + [lb] if cur and lb == cur[-1] + 1 else [lb]
        if len(cur) > len(best):
            best = cur
    return best


def _order(n, deps, loops) -> list[tuple]:
    """Loops and single definitions in a dependency order (first definition first); all
    straight-line when loops and definitions would depend on each other in a cycle."""
    item_of, items = {}, []
    for order, body, covered in loops:
        for i in covered:
            item_of[i] = len(items)
        items.append(("loop", order, body, covered))
    for i in range(n):
        if i not in item_of:
            item_of[i] = len(items)
            items.append(("def", i))
    after = [set() for _ in items]
    indeg = [0] * len(items)
    for i in range(n):
        for j in deps[i]:
            a, b = item_of[j], item_of[i]
            if a != b and b not in after[a]:
                after[a].add(b)
                indeg[b] += 1
    first = [min(it[3]) if it[0] == "loop" else it[1] for it in items]
    heap = [(first[k], k) for k in range(len(items)) if indeg[k] == 0]
    heapq.heapify(heap)
    out = []
    while heap:
        _, k = heapq.heappop(heap)
        out.append(items[k])
        for b in after[k]:
            indeg[b] -= 1
            if indeg[b] == 0:
                heapq.heappush(heap, (first[b], b))
    return out if len(out) == len(items) else [("def", i) for i in range(n)]


# --------------------------------------------------------------- emission
class _LoopScope(_Scope):
    """A function body whose tensors live in ``t`` under their (possibly label-variable) names."""

    def __init__(self, gen: "LoopGenerator"):
        super().__init__(gen, lambda n: fstring_key(n, gen.syms))
        self.names.taken |= set(gen.syms)

    def ref(self, name) -> str:
        if name not in self.loaded:
            self.g.register(name)
            if name in self.g.concrete:  # a name with the loop variable: h(k-1) -> h_km1
                self.loaded[name] = self.bind(local_hint(name, self.g.syms), self.load(name))
            else:
                self.loaded[name] = self.bind(self.g.ident[name], self.load(name), exact=True)
        return self.loaded[name]

    def local(self, name) -> str:
        """The variable a definition of ``name`` is computed into."""
        if name in self.g.concrete:
            return self.names.new(local_hint(name, self.g.syms))
        return self.g.ident[name]

    def _known_value(self, e):
        if len(e.args) == 1 and isinstance(e.args[0], Ref):  # tanh' from h(k) = tanh(z_h(k))
            name = self.g.applied.get((e.fn.name, e.args[0].name))
            if name is not None:
                self.g.register(name)
        return super()._known_value(e)

    def loop(self, var: str, labels: list[int], emit_body, exprs=()) -> None:
        """``for var in …:`` around what ``emit_body()`` emits; names bound inside stay inside.
        Parameters that ``exprs`` use are read before the loop."""
        for e in exprs:
            for r in refs(e):
                if (r.name in self.g.params or r.name in self.g.direction) and not labels_of(r.name):
                    self.ref(r.name)
        loaded, cache, start = dict(self.loaded), dict(self.cache), len(self.lines)
        emit_body()
        body = ["    " + line for line in self.lines[start:]] or ["    pass"]
        self.lines[start:] = [f"for {var} in {self.g.range_code(labels)}:"] + body
        self.loaded, self.cache = loaded, cache


class LoopGenerator(_Generator):
    """The NumPy generator with the gradient path written as loops over family labels."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        taken = self.globals
        self.syms = tuple(s if s not in taken else "_" + s for s in ("k", "m"))
        #: abstract name (``h(k-1)``) → a member it was written from (for batched / known values)
        self.concrete: dict = {}
        self.support: list[str] = []
        self.grad_set: list = []
        # known values through a shift: (tanh, "z_h(k+1)") -> "h(k+1)", so tanh' reads h
        for (fn, arg), node in list(self.applied.items()):
            for lab in labels_of(node)[:1]:
                for sym in self.syms:
                    for ref in range(lab - 2, lab + 3):
                        name = shift_labels(node, ref, sym)
                        self.applied[(fn, shift_labels(arg, ref, sym))] = name
        self.applied_to = {arg: node for (_, arg), node in self.applied.items() if labels_of(node)}

    def range_code(self, labels: list[int]) -> str:
        """What a loop over ``labels`` iterates: a range, or the labels themselves."""
        lo, hi = labels[0], labels[-1]
        if labels == list(range(lo, hi + 1)):
            return f"range({lo}, {hi + 1})"
        if labels == list(range(lo, hi - 1, -1)):
            return f"range({lo}, {hi - 1}, -1)"
        return repr(tuple(labels))

    # -- abstract names --------------------------------------------------------
    def abstracted(self, e, ref: int, sym: str):
        """``e`` written relative to label ``ref`` with the loop variable ``sym``; remembers the
        member each new name stands for."""
        for r in refs(e):
            for name in (r.name, self.applied_to.get(r.name)):
                if name is not None and shift_labels(name, ref, sym) != name:
                    self.concrete.setdefault(shift_labels(name, ref, sym), name)
        return abstract(e, ref, sym)

    def register(self, name) -> None:
        """Make an abstract name known to the lowering (batched flag, identifier, known values)."""
        conc = self.concrete.get(name)
        if name in self.batched or conc not in self.batched:
            return
        self.batched[name] = self.batched[conc]
        self.ident.setdefault(name, local_hint(name, self.syms))

    # -- definitions -------------------------------------------------------------
    def define(self, s: _LoopScope, name, indices, expr) -> None:
        """One definition: computed into a local, stored in ``t``."""
        for r in refs(expr):
            self.register(r.name)
        self.register(name)
        var = s.local(name)
        s.lines.append("# " + self.show(var, indices, expr))
        fams = [] if name in self.concrete or isinstance(expr, (Apply, Softmax, LogSumExp)) else \
            self.sum_families(expr, indices)
        if any(labels for labels, _ in fams):  # a sum over steps (sum_t): accumulated in a loop
            L, batched = _Letters(indices), False
            s.lines[-1] = "# " + var + "".join(f"[{','.join(L[i] for i in indices)}]" if indices else "") + \
                " = " + " + ".join(("Σ_" + self.syms[0] + " " if lb else "") + _show(e, L, self.name) for lb, e in fams)
            s.bind(var, "0.0", exact=True)
            for labels, e in fams:
                def emit(e=e):
                    t = as_terms(e, indices)[0]
                    code, b = s.contract([s.lower(f) for f in t.factors], t.coef, indices, True, L)
                    s.lines.append(f"{var} = {var} + {code}")
                    return b
                flags = []
                self.each(s, labels, lambda emit=emit: flags.append(emit()), exprs=[e])
                batched = batched or any(flags)
        elif isinstance(expr, (Apply, Softmax, LogSumExp)) and expr.free == indices:
            v = s.lower(expr, target=var)
            if v.code != var:
                s.bind(var, v.code, exact=True)
            batched = v.batched
        else:
            parts = s.terms(expr, indices, True, _Letters(indices))
            s.bind(var, _join([c for c, _ in parts]), exact=True)
            batched = any(b for _, b in parts)
        s.loaded[name] = var
        s.lines.append(f"{fstring_key(name, self.syms)} = {var}")
        self.batched[name] = batched
        self.ident.setdefault(name, var)

    def define_all(self, s: _LoopScope, defs) -> None:
        """``defs`` in dependency order, families as loops (:func:`schedule`)."""
        sym = self.syms[0]
        for name, _, expr in defs:  # as lowering will find them: batched if any operand is
            if name not in self.batched:
                self.batched[name] = any(self.batched.get(r.name, False) for r in refs(expr))
        for item in schedule(defs, lambda n: self.batched.get(n, False)):
            if item[0] == "def":
                self.define(s, *defs[item[1]])
                continue
            _, labels, body, covered = item

            def emit_body(body=body, first=labels[0]):
                for i in body:
                    name, indices, expr = defs[i]
                    ref = labels_of(name)[0]
                    self.concrete.setdefault(shift_labels(name, ref, sym), name)
                    self.define(s, shift_labels(name, ref, sym), indices, self.abstracted(expr, ref, sym))

            s.loop(sym, labels, emit_body, [defs[i][2] for i in body])
            for i in covered:  # every member of the loop is as batched as its step's definition
                name = defs[i][0]
                self.batched[name] = self.batched[shift_labels(name, labels_of(name)[0], sym)]

    # -- functions -----------------------------------------------------------------
    def forward(self) -> str:
        s = _LoopScope(self)
        s.lines += ["t = {name: data[name] for name in INPUTS}",
                    "t.update((name, params[name]) for name in PARAMS)"]
        self.define_all(s, [(n.name, n.indices, n.expr) for n in self.d.nodes])
        return self.function("_forward(params, data)",
                             "Every tensor of the network by name: parameters, data and nodes (data and "
                             "nodes per sample); a family's steps as one loop over its label.",
                             s.lines + ["return t"])

    def _pass(self, fname: str, doc: str, exprs, skip=()) -> list:
        """A support function computing the quantities ``exprs`` need (less ``skip``) into ``t``."""
        qs = [q for q in self.needed(exprs) if q.name not in skip]
        s = _LoopScope(self)
        self.define_all(s, [(q.name, q.indices, q.expr) for q in qs])
        self.support.append(self.function(f"{fname}(t)", doc, s.lines or ["pass"]))
        return [q.name for q in qs]

    def gradient_prologue(self) -> list[str]:
        if not self.grad_set:
            self.grad_set = self._pass(
                "_backward", "Back-propagated quantities of the gradient into t (a family's steps as "
                "one reversed loop over its label).", [self.d.blocks[(p,)].expr for p in self.params]) or [None]
        return ["t = _forward(params, data)", "_backward(t)", self.batch_line]

    def term_families(self, b, sym: str | None = None):
        """The block's terms as ``(labels or None, Prod written with the loop variable sym)``."""
        return self.sum_families(b.expr, b.indices, sym)

    def sum_families(self, expr, indices, sym: str | None = None):
        """The terms of ``expr`` as ``(labels or None, Prod written with the loop variable sym)``:
        a sum over steps (:func:`einderiv.fold.fold_terms`) is one entry."""
        sym = sym or self.syms[0]
        terms = [Prod((Const(t.coef),) + t.factors, indices) for t in as_terms(expr, indices)]
        out = []
        for tf in fold_terms(terms, indices, sym):
            split: dict = {}  # members whose operands differ in the batch axis are apart
            for lb, t in zip(tf.labels, tf.originals):
                split.setdefault(_pattern(t, max(tensor_labels(t)), lambda n: self.batched.get(n, False)),
                                 []).append((lb, t))
            for part in (split.values() if tf.folded else ()):
                if len(part) > 1:
                    first = part[0][1]
                    out.append(([lb for lb, _ in part], self.abstracted(first, max(tensor_labels(first)), sym)))
                else:
                    out.append((None, part[0][1]))
            if not tf.folded:
                out.extend((None, t) for t in tf.originals)
        return out

    def each(self, s, labels, fn, sym=None, exprs=()) -> None:
        """``fn()`` once, or in a loop over ``labels``."""
        if labels is None:
            fn()
        else:
            s.loop(sym or self.syms[0], labels, fn, exprs)

    def blocks_function(self, sig, doc, wrts, prefix, keep_batch, key=lambda w: f'"{w[0]}"') -> str:
        if any(len(w) != 1 for w in wrts):
            return super().blocks_function(sig, doc, wrts, prefix, keep_batch, key)
        s = _LoopScope(self)
        body = self.gradient_prologue()
        out = []
        for (a,) in wrts:
            out.append(f'"{a}": ' + self.accumulate(s, f"{prefix}{a}", self.d.blocks[(a,)], keep_batch))
        return self.function(sig, doc, body + s.lines + ["return {" + ", ".join(out) + "}"])

    def accumulate(self, s, var, b, keep_batch: bool, label: str = "", shape: str = "",
                   term_sym: str | None = None) -> str:
        """A block as a sum over term families, each a loop accumulating one term per step."""
        shape = shape or self.shape_of(b.wrt)
        zeros = f"np.zeros(((B,) + {shape}))" if keep_batch else f"np.zeros({shape})"
        var = s.bind(var, zeros)
        if is_zero(b.expr):
            return var
        L = _Letters(b.indices)
        fams = self.sum_families(b.expr, b.indices, term_sym)
        shown = [("Σ_" + (term_sym or self.syms[0]) + " " if labels else "") + _show(e, L, self.name) for labels, e in fams]
        s.lines.append("# " + (label or "∂f/∂" + ",".join(map(str, b.wrt))) + " = " + " + ".join(shown))

        for labels, e in fams:
            def emit(e=e):
                t = as_terms(e, b.indices)[0]
                code, batched = s.contract([s.lower(f) for f in t.factors], t.coef, b.indices, keep_batch, L)
                if batched and not keep_batch:
                    code = (code if re.fullmatch(r"[\w.]+", code) else f"({code})") + " / B"
                s.lines.append(f"{var} = {var} + {code}")
            self.each(s, labels, emit, term_sym, exprs=[e])
        return var

    def factors(self) -> tuple[str, dict]:
        s = _LoopScope(self)
        body = self.gradient_prologue()
        out, axes_of = [], {}
        for a in self.params:
            b = self.d.blocks[(a,)]
            pos = {ix: k for k, ix in enumerate(b.indices)}
            var = s.bind(f"terms_{a}", "[]")
            axes = []
            for labels, e in self.term_families(b):
                ft = factored(e, b.indices)[0]
                groups = ft.groups or ()
                axes += [tuple(tuple(pos[i] for i in g.free) for g in groups) or ((),)] * len(labels or [0])

                def emit(ft=ft):
                    facs = self.factor_codes(s, ft)
                    s.lines.append(f"{var}.append((" + ", ".join(facs) + ("," if len(facs) == 1 else "") + "))")
                self.each(s, labels, emit, exprs=[e])
            if not axes:
                s.lines.append(f'{var}.append((np.zeros((B,) + PARAMS["{a}"]),))')
                axes = [(tuple(range(len(self.shape[a]))),)]
            out.append(f'"{a}": {var}')
            axes_of[a] = axes
        doc = ("Per-sample gradient of each parameter as a sum of outer products: name -> list of "
               "terms, each a tuple of per-sample factors (axes: GRADIENT_FACTOR_AXES).")
        return self.function("gradient_factors(params, data)", doc,
                             body + s.lines + ["return {" + ", ".join(out) + "}"]), axes_of

    def norms(self) -> str:
        """‖Σ_t g_t‖² = Σ_t Σ_u ⟨g_t, g_u⟩ over pairs of term families: a double loop over steps."""
        s = _LoopScope(self)
        body = self.gradient_prologue()
        k, m = self.syms
        out = []
        for a in self.params:
            b = self.d.blocks[(a,)]
            fams, second = self.term_families(b, k), self.term_families(b, m)
            sq = s.bind(f"sq_{a}", "np.zeros(B)")
            s.lines.append(f"# ‖∂f/∂{a}‖² = Σ over pairs of terms (steps " + k + ", " + m + ") of their "
                           "inner product")
            for i, (li, ei) in enumerate(fams):
                for j in range(i, len(fams)):
                    lj, ej = second[j]
                    ti, tj = as_terms(ei, b.indices)[0], as_terms(ej, b.indices)[0]
                    coef = ti.coef * tj.coef * (1 if i == j else 2)

                    def inner(ti=ti, tj=tj, coef=coef):
                        dummies = {ix: fresh(ix.dim, ix.name) for ix in tj.bound}
                        other = tuple(rename(f, dummies) for f in tj.factors)
                        code, _ = s.contract([s.lower(f) for f in ti.factors + other], coef, (), True)
                        s.lines.append(f"{sq} = {sq} + {code}")

                    self.each(s, li, lambda lj=lj, ej=ej, inner=inner: self.each(s, lj, inner, m, [ej]), k, [ei, ej])
            out.append(f'"{a}": ' + s.bind(f"norm_{a}", f"np.sqrt(np.maximum({sq}, 0.0))"))
        return self.function("per_sample_gradient_norms(params, data)",
                             "Euclidean norm of each sample's gradient, per parameter: name -> (B,), "
                             "from the gradient's outer-product factors (no (B, *shape) array).",
                             body + s.lines + ["return {" + ", ".join(out) + "}"])

    def hvp(self) -> str:
        body = self.gradient_prologue()[:2]
        self._pass("_r_pass", "Forward tangents tan[n] (ascending loops) and R-adjoints radj[n] "
                   "(reversed loops) of the HVP into t.", [b.expr for b in self.d.hvp.values()],
                   skip=set(self.grad_set))
        body += ['for name in PARAMS:', '    t["dir[" + name + "]"] = vector[name]', "_r_pass(t)",
                 self.batch_line]
        s = _LoopScope(self)
        out = []
        for a in self.params:
            b = self.d.hvp[a]
            out.append(f'"{a}": ' + self.accumulate(s, f"hvp_{a}", b, False, label=f"Σ_b H[{a},b]·vector[b]",
                                                    shape=self.shape_of([a])))
        return self.function("hvp(params, data, vector)",
                             "Hessian-vector product Σ_b H[(a, b)]·vector[b] for every parameter a "
                             "(batch mean), by the R-operator: forward tangents and R-adjoints, a "
                             "family's steps as loops — no Hessian block and no Jacobian is formed.",
                             body + s.lines + ["return {" + ", ".join(out) + "}"])

    def support_functions(self) -> list[str]:
        return self.support
