"""The Python API: everything the command line does, one function each.

    >>> import einderiv
    >>> net = einderiv.load("derivations/paper_mlp.ein")          # read, parse, check
    >>> d = einderiv.derive(net, order=2)                          # derive + factor
    >>> print(einderiv.derivation_text(d))                         # doctest: +SKIP
    >>> tex = einderiv.latex(d)                                     # standalone document
    >>> src = einderiv.codegen(d)                                   # NumPy module source
    >>> src = einderiv.codegen(d, backend="torch")                  # the same over torch
    >>> einderiv.check(d, seed=0).ok
    True

A file whose ``depth n`` stays symbolic loads as a layer :class:`Template`:
``derive(template)`` is its :class:`GeneralForm` (the equations for any depth), which
``derivation_text`` and ``latex`` print; ``codegen(template)`` is a gradient module that
takes the depth at run time; ``template.instantiate(3)`` — or ``load(path, depth={'n': 3})``
— is the network at depth 3.

**Hessian form.**  A :class:`Derivation` from :func:`derive` holds its Hessian blocks in the
compact form (through second-order adjoints ``hess[s,s']``: O(L²) terms, what the code
generator uses); the paper's expanded form (every Gauss–Newton and A″ term spelled out) is
built from it when asked for, and kept (as data: ``einderiv.calculus.derive.in_form(d, "expanded")``).  Each job has one default, the same here and on the command
line: ``derivation_text``, ``latex`` and ``structure`` print ``form="expanded"`` (unless the
file says ``# einderiv: form compact``, or the expanded form would be too large: past
:data:`EXPANDED_LIMIT` they print the compact one, with a note);
``codegen`` and ``check`` use ``form="compact"`` (``form="expanded"`` checks the printed
form).  So ``derivation_text(derive(net))`` is what ``einderiv derive FILE`` prints and
``codegen(derive(net))`` what ``einderiv codegen FILE`` writes.

**Directives.**  A file that opens with ``# einderiv: order 3`` or ``# einderiv: form
compact`` (:mod:`einderiv.frontend.header`) changes these defaults for that network,
here as on the command line: an argument left at ``None`` takes the file's directive,
else the default above; an argument given wins.

Warnings: ``codegen`` and ``check`` warn (:class:`~einderiv.errors.EinderivWarning`) about a user
function whose generated code can overflow at large arguments (``exp(z)`` left where the stable
rewrite of :mod:`einderiv.emit.stable` does not apply).

Errors: bad input raises an :class:`~einderiv.errors.EinderivError` (a bad file with its
``file:line:col``; a bad argument named as you passed it, ``dims={'x': 3} names no
dimension 'x'…``); a bug in einderiv raises :class:`~einderiv.errors.InternalError`.
"""
from __future__ import annotations

import math
import warnings
from typing import Mapping, Union

import sympy

from . import progress
from .analysis.structure import summarize
from .analysis.template import GeneralForm, general_form, in_general_form
from .calculus.derive import Derivation, expanded_size, in_form
from .calculus.derive import derive as _derive
from .emit import latex as _latex
from .emit import numpy as _numpy
from .emit import text as _text
from .emit.backends import BACKENDS, PRINTERS
from .emit.columns import without_pairs
from .emit.float64 import Float64Overflow
from .emit.stable import overflow_warnings
from .emit.template_numpy import generate_template
from .errors import Argument, EinderivWarning, Location, UsageError
from .frontend.header import Header
from .frontend.limits import max_size
from .frontend.model import Template, load
from .frontend.network import Network, dim_symbol
from .frontend.parse import parse
from .frontend.syntax import Node, Number
from .ir import labels_of
from .ir.tools import walk
from .numcheck import CheckReport
from .numcheck import check as _check

__all__ = ["load", "derive", "derivation_text", "latex", "codegen", "check", "structure", "BACKENDS",
           "Network", "Template", "Derivation", "GeneralForm", "CheckReport"]

Sizes = Union[Mapping[str, int], None]
#: the order :func:`derive` goes to when neither its caller nor the file says
DEFAULT_ORDER = 2
#: seconds the expanded form may take before a note (on a progress display) compares it with the compact one
NOTE_AFTER = 5.0
#: above this :func:`~einderiv.calculus.derive.expanded_size` the printers default to the compact
#: form (a note says so): about 17 layers of a dense MLP, whose expanded form grows as L³
EXPANDED_LIMIT = 4000
#: how a progress line names each backend's module
LIBRARIES = {"numpy": "NumPy", "torch": "PyTorch", "jax": "JAX"}


def derive(model: Network | Template, order: int | None = None,
           form: str | None = None) -> Derivation | GeneralForm:
    """Every derivative block up to ``order`` (1: gradients, 2: + Hessian blocks, …); without
    ``order``, the file's ``# einderiv: order N`` directive, else :data:`DEFAULT_ORDER`.

    For a :class:`Network`, the :class:`Derivation` (Hessian blocks compact; the printers
    build the expanded form they show, whatever ``form`` says).  For a :class:`Template`, its
    :class:`GeneralForm` (order ≤ 2), validated against the derivation at several depths, with
    its Hessian blocks in ``form`` — without it, the file's ``# einderiv: form`` directive, else
    ``"expanded"`` (a recurrence may be written ``"compact"``; the other form is built when a
    printer asks for it).
    """
    order = _option(model, "order", order, DEFAULT_ORDER)
    if isinstance(model, Template):
        form = _option(model, "form", form, "expanded")
        with progress.stage("the general form"):
            return general_form(model, order, expanded=form != "compact" or not model.sequence)
    with progress.stage("deriving"):
        return _derive(model, order, expanded=False)


def derivation_text(derivation: Derivation | GeneralForm, sizes: Sizes = None, form: str | None = None) -> str:
    """The derivation in readable index notation, with the structure summary (``einderiv derive``).
    Without ``form``, the file's ``# einderiv: form`` directive, else ``"expanded"``."""
    if isinstance(derivation, GeneralForm):
        return _text.render_general(_general_only(derivation, sizes, form))
    derivation = _in_form(derivation, printed_form(derivation, form))
    with progress.stage("writing the derivation"):
        return _text.render(derivation, sizes)


def latex(derivation: Derivation | GeneralForm, sizes: Sizes = None, form: str | None = None,
          naming: str = "compact") -> str:
    """A standalone LaTeX (amsmath) document of the derivation (``einderiv latex``).

    ``naming="compact"`` writes intermediates as the paper does (``z^{(1)}``, ``γ^{(1)}``,
    ``η^{(2,1)}`` = ∂v^{(2)}/∂z^{(1)}); ``"nested"`` spells every name out
    (``η^{(v_{2},z_{v_{1}})}``).  ``form`` as for :func:`derivation_text`.
    """
    if isinstance(derivation, GeneralForm):
        return _latex.render_general(_general_only(derivation, sizes, form), naming)
    derivation = _in_form(derivation, printed_form(derivation, form))
    with progress.stage("writing the LaTeX document"):
        return _latex.render(derivation, sizes, naming)


def structure(derivation: Derivation, sizes: Sizes = None, form: str | None = None) -> str:
    """The per-block structure table: outer products, terms, storage (``einderiv structure``;
    ``form`` as for :func:`derivation_text`)."""
    derivation = _concrete(derivation, "structure")
    derivation = _in_form(derivation, printed_form(derivation, form))
    with progress.stage("the structure table"):
        return _text.structure_table(summarize(derivation, sizes))


def codegen(derivation: Derivation | GeneralForm | Template | Network, sizes: Sizes = None, form: str | None = None,
            backend: str = "numpy", order: int | None = None) -> str:
    """Source of a standalone module (``gradient``, ``hessian``, ``hvp``, …; ``einderiv codegen``);
    docs/module.md is its contract.  Without ``form``, the file's ``# einderiv: form``
    directive, else ``"compact"``.

    ``backend`` is the array library it computes with: ``"numpy"``, ``"torch"`` (plain torch
    ops on the inputs' device and dtype, no autograd) or ``"jax"`` (pure, jit-compatible
    functions of ``jax.numpy`` arrays); the contract and the contraction plans are the same.
    Every size must be known: from the file's ``dims``, ``load(..., dims=...)`` or ``sizes``.
    A layer template (or its general form) gives a gradient module whose depth is the
    length of the parameter lists it is called with.  A :class:`Network` is derived here to
    ``order`` (as :func:`derive`), the same module as ``codegen(derive(net, order))``, deriving
    only what it reads: a recurrence longer than 8 steps at order 2 takes its Hessian and GGN
    diagonal by loops over the steps, and its Hessian blocks (O(T²) of them) are not derived.
    """
    printer = _printer(backend)
    if isinstance(derivation, Network):
        derivation = _for_module(derivation, order, form, backend)
    elif order is not None:
        raise UsageError("{0}: a derivation (or template) has its order; order is for a network, "
                         "e.g. codegen(load(path), order=2)", arguments=(Argument("order", None, order),))
    stage = f"generating the {LIBRARIES[backend]} module"
    if isinstance(derivation, GeneralForm):
        derivation = derivation.template
    if isinstance(derivation, Template):
        if sizes:
            raise UsageError("{0}: a layer template takes its sizes when it is loaded, "
                             "load(path, dims=...)", arguments=(Argument("sizes", None, dict(sizes)),))
        if derivation.sequence and backend != "numpy":  # the run-time-length module is NumPy only
            raise UsageError(f"the {LIBRARIES[backend]} module of a recurrence over {derivation.depth} steps is "
                             f"generated at a given length (the module that reads {derivation.depth} at run time "
                             "is NumPy only): give it, e.g. {0}", arguments=(Argument("depth", derivation.depth, 4),))
        with progress.stage(stage):
            return generate_template(derivation, printer=printer)
    if derivation.order >= 2:  # its dense Hessian
        largest_array(derivation, sizes, job="codegen")
    derivation = _in_form(derivation, _option(derivation, "form", form, "compact"))
    _warn_overflow(derivation)
    with progress.stage(stage):
        try:
            return _numpy.generate(derivation, sizes, printer=printer)
        except Float64Overflow as exc:
            raise _beyond_float64(derivation.network, exc) from None


def _for_module(net: Network, order: int | None, form: str | None, backend: str) -> Derivation:
    """The derivation the module of ``net`` reads (see :func:`codegen`)."""
    order = _option(net, "order", order, DEFAULT_ORDER)
    if order == 2 and backend == "numpy" and _option(net, "form", form, "compact") == "compact" and \
            any(isinstance(lab, int) for d in net.definitions for lab in labels_of(d.name)):
        with progress.stage("deriving"):
            lean = _derive(net, 2, expanded=False, pairs=False)
        if without_pairs(lean):
            return lean
    return derive(net, order)


def check(derivation: Derivation, sizes: Sizes = None, seed: int = 0, batch: int = 3, tol: float = 1e-6,
          form: str | None = None, backend: str = "numpy") -> CheckReport:
    """Run the generated kernels and compare every block with central differences (``einderiv check``;
    ``form`` as for :func:`codegen`); ``backend`` ``"torch"``/``"jax"`` checks that library's
    module, in float64."""
    _printer(backend)
    derivation = _concrete(derivation, "check")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise UsageError("{0}: the seed must be a non-negative integer", arguments=(Argument("seed", None, seed),))
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise UsageError("{0}: the batch must be a positive integer", arguments=(Argument("batch", None, batch),))
    if not isinstance(tol, (int, float)) or not math.isfinite(tol) or tol < 0:
        raise UsageError("{0}: the tolerance must be a non-negative number", arguments=(Argument("tol", None, tol),))
    largest_array(derivation, sizes, batch)
    derivation = _in_form(derivation, _option(derivation, "form", form, "compact"))
    _warn_overflow(derivation)
    with progress.stage("checking against finite differences"):
        try:
            return _check(derivation, sizes, seed=seed, batch=batch, tol=tol, backend=backend)
        except Float64Overflow as exc:
            raise _beyond_float64(derivation.network, exc) from None
        except OverflowError as exc:  # an exact constant of the derivatives beyond float64 (1e300 W x)
            raise UsageError(f"{derivation.network.path}: a constant of the derivatives is beyond float64's range "
                             f"({exc}); expected numbers that float64 can hold, e.g. smaller literals") from None


def largest_array(derivation: Derivation, sizes: Sizes = None, batch: int = 3, job: str = "check") -> int:
    """The elements of the largest array ``check`` allocates — a batch of a tensor, the parameters,
    the dense Hessian (order ≥ 2: P², order 3: P³) — or :class:`UsageError` when that is more than
    :func:`~einderiv.frontend.limits.max_size` (``EINDERIV_MAX_SIZE``, ``--max-size``), at the
    declaration of that tensor (of the first weight, for the parameters and their derivatives).
    ``job="codegen"``: the largest array the generated module allocates whatever its batch, the
    dense Hessian (P², order ≥ 2).  Sizes not known count as 1 (``check``
    asks for them)."""
    net = derivation.network
    known = {s: sympy.Integer(v) for s, v in {**net.sizes(), **{dim_symbol(k): v for k, v in
                                                                  (sizes or {}).items()}}.items()}

    def elements(indices) -> int:
        return math.prod(int(v) if (v := sympy.sympify(ix.dim).xreplace(known)).is_Integer else 1
                         for ix in indices)

    arrays = [] if job == "codegen" else [(batch * elements(t.indices), f"a batch of {t.name}", t.loc)
                                          for t in [*net.data, *net.definitions]]
    count = sum(elements(t.indices) for t in net.params)
    order = min(derivation.order, 2 if job == "codegen" else 3)
    first = net.params[0].loc if net.params else None
    arrays.append((count ** order, f"{count:,} parameters" + (f" to the power {order}, the dense derivatives"
                                                              if order > 1 else ""), first))
    size, what, loc = max(arrays, key=lambda a: a[0])
    if size > max_size():
        who = "check" if job == "check" else "the generated module"
        raise UsageError(f"{'' if loc else net.path + ': '}{who} would allocate an array of {size:,} elements "
                         f"({what}); the limit is {max_size():,} (--max-size or EINDERIV_MAX_SIZE sets it)", loc)
    return size


def printed_form(derivation: Derivation, form: str | None) -> str:
    """The Hessian form to print: ``form``, else the file's directive, else ``"expanded"`` — or
    ``"compact"`` when the expanded form would be too large (:data:`EXPANDED_LIMIT`), with an
    :class:`~einderiv.errors.EinderivWarning` note saying so."""
    chosen = _option(derivation, "form", form, None)
    if chosen is not None:
        return chosen
    size = expanded_size(derivation) if derivation.order >= 2 else 0
    if size <= EXPANDED_LIMIT:
        return "expanded"
    warnings.warn("einderiv: note: Hessian blocks in the compact form (through second-order adjoints H[s,s′]): "
                  f"the expanded form would spell out terms for {size:,} (node, parameter, parameter) triples, "
                  f"over the limit of {EXPANDED_LIMIT:,} (it grows as depth cubed); --form expanded prints it",
                  EinderivWarning, stacklevel=3)
    return "compact"


# ------------------------------------------------------------------ helpers
def _beyond_float64(net: Network, exc: Float64Overflow) -> UsageError:
    """The refusal of a module with a constant beyond float64, at the literal that made it: the
    number written in the network's expressions farthest from 1 (in magnitude, either way); without one
    (a constant of a function body), at the file."""
    numbers: list[Number] = []

    def visit(node) -> None:
        if isinstance(node, Number):
            numbers.append(node)
        elif isinstance(node, (Node, tuple)):
            for child in (node if isinstance(node, tuple) else vars(node).values()):
                visit(child)

    if net.source:
        visit(parse(net.source, net.path))
    tiny = "e-" in exc.value  # 1/10**600, from a small literal's powers
    far = max((n for n in numbers if float(n.text) not in (0.0, 1.0)), default=None,
              key=lambda n: abs(math.log10(abs(float(n.text)))))  # the literal farthest from 1, either way
    beyond = "below float64's range (about 2.2e-308)" if tiny else "beyond float64's range (about 1.8e+308)"
    if far is None:
        return UsageError(f"{net.path}: the generated code has the constant {exc.value}, {beyond}; expected "
                          f"constants float64 can hold")
    return UsageError(f"number {far.text} gives the generated code the constant {exc.value} (from its powers in the "
                      f"exact derivatives), {beyond}; expected a {'smaller' if abs(float(far.text)) > 1 else 'larger'}"
                      " number (rescale the data or the weights instead)",
                      Location(net.path, far.line, far.column))


def _warn_overflow(derivation: Derivation) -> None:
    """An :class:`EinderivWarning` for each user function whose generated code can overflow
    (built-ins and what the stability rewrite fixes are printed stably: :mod:`einderiv.emit.stable`)."""
    for line in overflow_warnings(derivation):
        warnings.warn(line, EinderivWarning, stacklevel=3)


def _printer(backend: str):
    if backend not in PRINTERS:
        raise UsageError(f"{{0}}: unknown backend; expected one of {', '.join(BACKENDS)}",
                         arguments=(Argument("backend", None, backend),))
    return PRINTERS[backend]


def _header(obj: Network | Template | Derivation | GeneralForm) -> Header:
    """The leading comment (directives, title) of the file ``obj`` was made from."""
    if isinstance(obj, GeneralForm):
        obj = obj.template
    if isinstance(obj, Derivation):
        obj = obj.network
    return obj.header


def _option(obj, key: str, given, default):
    """An argument given wins; else the file's directive for ``key``; else the default."""
    if given is not None:
        return given
    found = _header(obj).get(key)
    return default if found is None else found


def _in_form(derivation: Derivation, form: str) -> Derivation:
    """:func:`in_form` as a progress stage; when the expanded form took long and is much larger
    than the compact one, a note (on the progress display only) says so, with the numbers."""
    if (form == "expanded" or derivation.order >= 3) == derivation.expanded:
        return in_form(derivation, form)  # already in that form: nothing to build
    label = f"the {form} form"
    with progress.stage(label):
        other = in_form(derivation, form)
    seconds = progress.took(label)
    if other.expanded and seconds is not None and seconds >= NOTE_AFTER:  # built from the compact one
        note = _forms_note(derivation, other, seconds, progress.took("deriving"))
        if note:
            progress.note(note)
    return other


def _size(derivation: Derivation) -> int:
    """Expression nodes in the Hessian (and higher) blocks and the named quantities: what
    deriving and printing them walks."""
    exprs = [b.expr for wrt, b in derivation.blocks.items() if len(wrt) >= 2]
    return sum(1 for e in exprs + [q.expr for q in derivation.quantities] for _ in walk(e))


def _forms_note(compact: Derivation, expanded: Derivation, seconds: float, compact_seconds: float | None) -> str:
    """The note that ``--form compact`` would be much less work: the two forms' sizes (and
    times), when the expanded form is at least twice the compact one's size; else ""."""
    big, small = _size(expanded), _size(compact)
    if big < 2 * small:
        return ""
    took = f", which took {compact_seconds:.1f} s" if compact_seconds is not None else ""
    return (f"einderiv: note: the expanded form took {seconds:.1f} s and is {big / small:.1f}× the size of the "
            f"compact form ({big:,} vs {small:,} expression nodes){took}: add --form compact for the compact form")


def _general_only(general: GeneralForm, sizes: Sizes, form: str | None) -> GeneralForm:
    """A general form is printed with symbolic sizes; its Hessian blocks expanded, or for a
    recurrence either form (``form``, else the file's directive, else ``"expanded"``)."""
    if sizes:
        raise UsageError("{0}: the general form of a layer template keeps its sizes symbolic; "
                         "give sizes to a network at a concrete depth", arguments=(Argument("sizes", None, dict(sizes)),))
    tpl = general.template
    if form is None and tpl.header.form == "compact" and not tpl.sequence:
        raise UsageError("directive 'form compact': the general form of a layer template writes its Hessian "
                         "blocks expanded; the compact form needs a concrete depth, e.g. {0}",
                         tpl.header.where("form"), arguments=(Argument("depth", tpl.depth, 3),))
    return in_general_form(general, _option(general, "form", form, "expanded"))


def _concrete(derivation, job: str) -> Derivation:
    if isinstance(derivation, (GeneralForm, Template)):
        tpl = derivation.template if isinstance(derivation, GeneralForm) else derivation
        raise UsageError(f"{job}() needs a network at a concrete depth, not a layer template: derive "
                         f"template.instantiate(3) or load the file with {{0}}",
                         arguments=(Argument("depth", tpl.depth, 3),))
    return derivation
