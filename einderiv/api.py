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
file says ``# einderiv: form compact``);
``codegen`` and ``check`` use ``form="compact"`` (``form="expanded"`` checks the printed
form).  So ``derivation_text(derive(net))`` is what ``einderiv derive FILE`` prints and
``codegen(derive(net))`` what ``einderiv codegen FILE`` writes.

Errors: bad input raises an :class:`~einderiv.errors.EinderivError` (a bad file with its
``file:line:col``; a bad argument named as you passed it, ``dims={'x': 3} names no
dimension 'x'…``); a bug in einderiv raises :class:`~einderiv.errors.InternalError`.
"""
from __future__ import annotations

from typing import Mapping, Union

from .analysis.structure import summarize
from .analysis.template import GeneralForm, general_form, in_general_form
from .calculus.derive import Derivation, in_form
from .calculus.derive import derive as _derive
from .emit import latex as _latex
from .emit import numpy as _numpy
from .emit import text as _text
from .emit.backends import BACKENDS, PRINTERS
from .emit.template_numpy import generate_template
from .errors import Argument, UsageError
from .frontend.model import Template, load
from .frontend.network import Network
from .numcheck import CheckReport
from .numcheck import check as _check

__all__ = ["load", "derive", "derivation_text", "latex", "codegen", "check", "structure", "BACKENDS",
           "Network", "Template", "Derivation", "GeneralForm", "CheckReport"]

Sizes = Union[Mapping[str, int], None]
#: the order :func:`derive` goes to when neither its caller nor the file says
DEFAULT_ORDER = 2


def derive(model: Network | Template, order: int | None = None,
           form: str | None = None) -> Derivation | GeneralForm:
    """Every derivative block up to ``order`` (1: gradients, 2: + Hessian blocks, …); without
    ``order``, the file's ``# einderiv: order N`` directive, else 2.

    For a :class:`Network`, the :class:`Derivation` (Hessian blocks compact; the printers
    build the expanded form they show, whatever ``form`` says).  For a :class:`Template`, its
    :class:`GeneralForm` (order ≤ 2), validated against the derivation at several depths, with
    its Hessian blocks in ``form`` — without it, the file's ``# einderiv: form`` directive, else
    ``"expanded"`` (a recurrence may be written ``"compact"``; the other form is built when a
    printer asks for it).
    """
    if order is None:
        order = model.header.order or DEFAULT_ORDER
    if isinstance(model, Template):
        form = form or model.header.form or "expanded"
        return general_form(model, order, expanded=form != "compact" or not model.sequence)
    return _derive(model, order, expanded=False)


def derivation_text(derivation: Derivation | GeneralForm, sizes: Sizes = None, form: str | None = None) -> str:
    """The derivation in readable index notation, with the structure summary (``einderiv derive``).
    Without ``form``, the file's ``# einderiv: form`` directive, else ``"expanded"``."""
    if isinstance(derivation, GeneralForm):
        return _text.render_general(_general_only(derivation, sizes, form))
    return _text.render(in_form(derivation, printed_form(derivation, form)), sizes)


def latex(derivation: Derivation | GeneralForm, sizes: Sizes = None, form: str | None = None,
          naming: str = "compact") -> str:
    """A standalone LaTeX (amsmath) document of the derivation (``einderiv latex``).

    ``naming="compact"`` writes intermediates as the paper does (``z^{(1)}``, ``γ^{(1)}``,
    ``η^{(2,1)}`` = ∂v^{(2)}/∂z^{(1)}); ``"nested"`` spells every name out
    (``η^{(v_{2},z_{v_{1}})}``).  ``form`` as for :func:`derivation_text`.
    """
    if isinstance(derivation, GeneralForm):
        return _latex.render_general(_general_only(derivation, sizes, form), naming)
    return _latex.render(in_form(derivation, printed_form(derivation, form)), sizes, naming)


def structure(derivation: Derivation, sizes: Sizes = None, form: str | None = None) -> str:
    """The per-block structure table: outer products, terms, storage (``einderiv structure``)."""
    derivation = _concrete(derivation, "structure")
    return _text.structure_table(summarize(in_form(derivation, printed_form(derivation, form)), sizes))


def codegen(derivation: Derivation | GeneralForm | Template, sizes: Sizes = None, form: str = "compact",
            backend: str = "numpy") -> str:
    """Source of a standalone module (``gradient``, ``hessian``, ``hvp``, …; ``einderiv codegen``).

    ``backend`` is the array library it computes with: ``"numpy"``, ``"torch"`` (plain torch
    ops on the inputs' device and dtype, no autograd) or ``"jax"`` (pure, jit-compatible
    functions of ``jax.numpy`` arrays); the contract and the contraction plans are the same.
    Every size must be known: from the file's ``dims``, ``load(..., dims=...)`` or ``sizes``.
    A layer template (or its general form) gives a gradient module whose depth is the
    length of the parameter lists it is called with.
    """
    printer = _printer(backend)
    if isinstance(derivation, GeneralForm):
        derivation = derivation.template
    if isinstance(derivation, Template):
        if sizes:
            raise UsageError("{0}: a layer template takes its sizes when it is loaded, "
                             "load(path, dims=...)", arguments=(Argument("sizes", None, dict(sizes)),))
        if derivation.sequence:  # a module would read no length from its parameters: T = 0
            raise UsageError(f"a module for a recurrence over {derivation.depth} steps is generated at a given "
                             f"length (one that reads {derivation.depth} at run time is not written yet): "
                             "give it, e.g. {0}", arguments=(Argument("depth", derivation.depth, 4),))
        return generate_template(derivation, printer=printer)
    return _numpy.generate(in_form(derivation, form), sizes, printer=printer)


def check(derivation: Derivation, sizes: Sizes = None, seed: int = 0, batch: int = 3, tol: float = 1e-6,
          form: str = "compact", backend: str = "numpy") -> CheckReport:
    """Run the generated kernels and compare every block with central differences (``einderiv check``);
    ``backend`` ``"torch"``/``"jax"`` checks that library's module, in float64."""
    _printer(backend)
    return _check(in_form(_concrete(derivation, "check"), form), sizes, seed=seed, batch=batch, tol=tol,
                  backend=backend)


# ------------------------------------------------------------------ helpers
def _printer(backend: str):
    if backend not in PRINTERS:
        raise UsageError(f"{{0}}: unknown backend; expected one of {', '.join(BACKENDS)}",
                         arguments=(Argument("backend", None, backend),))
    return PRINTERS[backend]


def printed_form(derivation: Derivation, form: str | None) -> str:
    """The Hessian form to print: ``form``, else the file's directive, else ``"expanded"``."""
    return form or derivation.network.header.form or "expanded"


def _general_only(general: GeneralForm, sizes: Sizes, form: str | None) -> GeneralForm:
    """A general form is printed with symbolic sizes; its Hessian blocks expanded, or for a
    recurrence either form (``form``, else the file's directive, else ``"expanded"``)."""
    if sizes:
        raise UsageError("{0}: the general form of a layer template keeps its sizes symbolic; "
                         "give sizes to a network at a concrete depth", arguments=(Argument("sizes", None, dict(sizes)),))
    return in_general_form(general, form or general.template.header.form or "expanded")


def _concrete(derivation, job: str) -> Derivation:
    if isinstance(derivation, (GeneralForm, Template)):
        tpl = derivation.template if isinstance(derivation, GeneralForm) else derivation
        raise UsageError(f"{job}() needs a network at a concrete depth, not a layer template: derive "
                         f"template.instantiate(3) or load the file with {{0}}",
                         arguments=(Argument("depth", tpl.depth, 3),))
    return derivation
