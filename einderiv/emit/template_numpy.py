"""NumPy code for a layer template whose depth is given at run time (``einderiv codegen`` without ``--depth``).

:func:`generate_template` prints the run-time-depth kernel of :mod:`einderiv.emit.template_kernel`
(the module's contract is described there) with :class:`~einderiv.emit.numpy.NumPyPrinter`.
"""
from __future__ import annotations

from .kernel_context import static_heap
from .kernel_statements import lower_module
from .numpy import NumPyPrinter
from .sequence_kernel import sequence_kernel
from .template_full import full_template_kernel
from .template_kernel import template_kernel


def generate_template(tpl, printer: type = None) -> str:
    """The run-time-depth NumPy module of a :class:`~einderiv.analysis.template.Template`
    (``printer``: another array library's :class:`~einderiv.emit.numpy.NumPyPrinter` subclass)."""
    with static_heap():
        if tpl.sequence:
            module, ctx = sequence_kernel(tpl)
        elif printer is None or printer is NumPyPrinter:  # the whole contract (its support code is NumPy)
            module, ctx = full_template_kernel(tpl)
        else:
            module, ctx = template_kernel(tpl)
        return (printer or NumPyPrinter)().doprint(lower_module(ctx, module))
