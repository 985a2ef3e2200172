"""NumPy code for a layer template whose depth is given at run time (``einderiv codegen`` without ``--depth``).

:func:`generate_template` prints the run-time kernel of a template with
:class:`~einderiv.emit.numpy.NumPyPrinter` (or another library's subclass): a recurrence's
(:mod:`einderiv.emit.sequence_kernel`, NumPy only), a layer template's whole contract
(:mod:`einderiv.emit.template_full`, NumPy), else its first-order module
(:mod:`einderiv.emit.template_kernel`: the torch and JAX printers, or an objective of several
arguments, whose GGN has no single seed).
"""
from __future__ import annotations

from ..errors import UsageError
from ..ir import paused
from .fuse import carry_fused
from .kernel_statements import lower_module
from .liveness import drop_unread
from .numpy import NumPyPrinter
from .sequence_kernel import sequence_kernel
from .template_full import full_template_kernel
from .template_kernel import template_kernel


def generate_template(tpl, printer: type = None) -> str:
    """The run-time-depth NumPy module of a :class:`~einderiv.analysis.template.Template`
    (``printer``: another array library's :class:`~einderiv.emit.numpy.NumPyPrinter` subclass)."""
    with paused():
        if tpl.sequence:
            module, ctx = sequence_kernel(tpl)
        else:
            module = None
            if printer is None or printer is NumPyPrinter:  # the whole contract (its support code is NumPy)
                try:
                    module, ctx = full_template_kernel(tpl)
                except UsageError:  # (an objective of several arguments: no seeded GGN) the first-order module
                    module = None
            if module is None:
                module, ctx = template_kernel(tpl)
        lowered = lower_module(ctx, module)
        return (printer or NumPyPrinter)().doprint(drop_unread(carry_fused(lowered) if tpl.sequence else lowered))
