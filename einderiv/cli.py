"""Command line: ``einderiv {derive,latex,codegen,check,structure} FILE [options]``.

A thin layer over :mod:`einderiv.api`: parse the arguments, call the API, write the output.

Exit codes:

* 0 — done (``check``: every block agrees with finite differences);
* 1 — ``check`` only: some block disagrees;
* 2 — bad input: a file that does not parse or check, a bad option.  One line,
  ``file:line:col: what is wrong; what was expected`` (a syntax error adds the line and
  a caret) or ``einderiv: error: …``; arguments are named as flags (``--dim x=3``);
* 3 — an internal error, a bug in einderiv: one line asking for a report; the
  traceback only with ``--traceback`` (alias ``--debug``, or ``EINDERIV_DEBUG`` set);
* 130 — interrupted.

A warning (a user function whose generated code can overflow) is one line on standard error,
``file:line:col: warning: …``, and leaves the exit code as it is.

Options default to the file's directives (``# einderiv: order 3``; see
:mod:`einderiv.frontend.header`), the command line winning.  While a command runs,
a progress line on standard error shows its stages — only when standard error is a
terminal (:mod:`einderiv.progress`), and erased when the command ends.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import traceback
import warnings

from . import __version__, api, cache, progress
from .errors import Argument, EinderivError, EinderivWarning, InternalError, UsageError

COMMANDS = {
    "derive": "print the derivation in index notation, with the structure summary",
    "latex": "write a standalone LaTeX document of the derivation",
    "codegen": "write a standalone NumPy, PyTorch or JAX module of gradient/Hessian/HVP kernels",
    "check": "run the generated kernels and compare every block with finite differences",
    "structure": "print, per parameter and Hessian block, its outer-product structure",
}
#: the Hessian form each command uses unless --form says otherwise (the API's defaults)
DEFAULT_FORM = {"derive": "expanded", "latex": "expanded", "structure": "expanded",
                "codegen": "compact", "check": "compact"}
#: how the command line spells an API argument
FLAGS = {"dims": "--dim", "sizes": "--dim", "depth": "--depth", "order": "--order", "form": "--form",
         "backend": "--backend", "seed": "--seed", "tol": "--tol", "batch": "--batch"}
#: the options that set a resource limit (einderiv.frontend.limits), and the variable each one sets
LIMIT_OPTIONS = {"max_steps": "EINDERIV_MAX_STEPS", "max_size": "EINDERIV_MAX_SIZE"}


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line and exit code 2."""

    def error(self, message: str):  # noqa: D401 - argparse API
        if message.endswith("required: COMMAND"):  # a bare `einderiv`
            message += f"; expected one of: {', '.join(COMMANDS)} (einderiv --help)"
        raise UsageError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="einderiv", description="Symbolic index-notation derivatives of neural networks.",
                epilog="A file may set --order and --form for every command in the comments that open it "
                       "('# einderiv: order 3', '# einderiv: form compact'); the command line wins.")
    p.add_argument("--version", action="version", version=f"einderiv {__version__}")
    p.add_argument("--traceback", "--debug", action="store_true", dest="traceback",
                   help="show the traceback of an error (for reporting a bug)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    for name, helptext in COMMANDS.items():
        c = sub.add_parser(name, help=helptext, description=helptext)
        c.add_argument("file", help="network file (.ein)")
        c.add_argument("--traceback", "--debug", action="store_true", dest="traceback", default=argparse.SUPPRESS,
                       help="show the traceback of an error (for reporting a bug)")
        c.add_argument("--no-cache", action="store_true", dest="no_cache",
                       help="neither answer from nor keep in the cache ($EINDERIV_CACHE, else "
                            "$XDG_CACHE_HOME/einderiv or ~/.cache/einderiv) that the einderiv command "
                            "uses for derive, latex, codegen and structure" if name in cache.COMMANDS else
                            "accepted for every command; check is never answered from the cache")
        c.add_argument("--order", type=int, default=None,
                       help="highest derivative order (default: the file's '# einderiv: order N' "
                            "line, else 2: gradients and Hessian blocks)")
        c.add_argument("--dim", action="append", default=[], metavar="NAME=SIZE",
                       help="give or replace the size of a dimension (repeatable)")
        c.add_argument("--depth", action="append", default=[], metavar="NAME=N",
                       help="give a layer template's depth (repeatable); without it, derive and latex "
                            "print the general form for any depth")
        if name in ("latex", "codegen", "derive", "structure"):
            c.add_argument("-o", "--output", metavar="OUT", help="write to OUT instead of stdout")
        c.add_argument("--max-steps", type=int, default=None, metavar="N",
                       help="most members one 'for t = lo..hi' may unroll (default 10000, or EINDERIV_MAX_STEPS)")
        if name in ("check", "codegen"):
            c.add_argument("--max-size", type=int, default=None, metavar="N",
                           help="most elements of one array check or the generated module allocates, the "
                                "dense Hessian included (default 100000000, or EINDERIV_MAX_SIZE)")
        if DEFAULT_FORM[name] == "expanded":
            c.add_argument("--form", choices=("expanded", "compact"), default=None,
                           help="Hessian blocks in the paper's expanded form (default, unless the file "
                                "says '# einderiv: form compact': every Gauss-Newton and A'' term "
                                "spelled out) or through the second-order adjoints H[s,s'] (compact: "
                                "shorter for deep or recurrent networks)")
        else:
            c.add_argument("--form", choices=("compact", "expanded"), default=None,
                           help="Hessian blocks through second-order adjoints hess[s,s'] (compact, the "
                                "default unless the file says '# einderiv: form expanded': O(L^2) terms) "
                                "or in the paper's expanded form that 'derive' and 'latex' print")
        if name in ("codegen", "check"):
            c.add_argument("--backend", choices=api.BACKENDS, default="numpy",
                           help="array library of the generated module: numpy (default), torch (plain "
                                "ops, any device, the inputs' dtype) or jax (pure, jit-compatible)"
                                + ("; check runs it in float64" if name == "check" else ""))
        if name == "latex":
            c.add_argument("--naming", choices=("compact", "nested"), default="compact",
                           help="names of intermediates: as the paper writes them (compact, the default: "
                                "z^(1), eta^(2,1)) or spelled out (nested: eta^(v_2,z_v_1))")
        if name == "check":
            c.add_argument("--seed", type=int, default=0, help="random seed for parameters and data")
            c.add_argument("--batch", type=int, default=3, help="samples per batch (default 3)")
            c.add_argument("--tol", type=float, default=1e-6,
                           help="largest acceptable error, max|got-ref|/max(1,max|ref|) (default 1e-6)")
    return p


def _pairs(items: list[str], option: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value.strip().lstrip("-").isdigit():
            raise UsageError(f"{option} expects NAME=SIZE with an integer SIZE, got '{item}'")
        out[name.strip()] = int(value)
    return out


def spell(arg: Argument) -> str:
    """An API argument as the command line writes it: ``dims={'x': 3}`` → ``--dim x=3``."""
    flag = FLAGS.get(arg.name)
    if flag is None:
        return arg.python()
    return f"{flag} {arg.key}={arg.value}" if arg.key is not None else f"{flag} {arg.value}"


def _writable(output: str | None) -> None:
    """A clear error, before any work, for an output path that cannot be written."""
    if not output:
        return
    if os.path.isdir(output):
        raise UsageError(f"-o {output}: is a directory; expected a file name")
    parent = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(parent):
        raise UsageError(f"-o {output}: no directory {parent}; expected a file in an existing directory")


def run(argv: list[str], transcript: cache.Transcript | None = None) -> int:
    """Run one command; raise on any error (see :func:`main` for the exit codes).  ``transcript``
    records what it writes (for the cache)."""
    args = _parser().parse_args(argv)
    args.transcript = transcript or cache.Transcript()
    if args.order is not None and args.order < 1:
        raise UsageError(f"--order must be a positive integer, got {args.order}")
    if args.command == "check" and args.batch < 1:
        raise UsageError(f"--batch must be a positive integer, got {args.batch}")
    if args.command == "check" and args.seed < 0:
        raise UsageError(f"--seed must be a non-negative integer, got {args.seed}")
    if args.command == "check" and not (math.isfinite(args.tol) and args.tol >= 0):
        raise UsageError(f"--tol must be a non-negative number, got {args.tol}")
    _writable(getattr(args, "output", None))
    saved = {var: os.environ.get(var) for var in LIMIT_OPTIONS.values()}
    try:
        for option, var in LIMIT_OPTIONS.items():
            value = getattr(args, option, None)
            if value is not None:
                if value < 1:
                    raise UsageError(f"--{option.replace('_', '-')} must be a positive integer, got {value}")
                os.environ[var] = str(value)
        return _run(args)
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


def _run(args) -> int:
    model = api.load(args.file, dims=_pairs(args.dim, "--dim"), depth=_pairs(args.depth, "--depth"))
    output = getattr(args, "output", None)
    for line in model.warnings() if isinstance(model, api.Network) else ():
        print(line, file=sys.stderr)
        args.transcript.warned(line)

    def write(text: str, out: str | None) -> None:  # written, and recorded for the cache
        cache.write(text, out)
        args.transcript.wrote(text, out)

    if isinstance(model, api.Template):
        if args.command in ("check", "structure"):
            if model.sequence:
                raise UsageError(f"'{args.command}' needs a concrete length for a recurrence over "
                                 f"{model.depth} steps: add --depth {model.depth}=4")
            raise UsageError(f"'{args.command}' needs a concrete depth for a layer template: "
                             f"add --depth {model.depth}=3")
        if args.command == "codegen":  # a gradient module for a depth given at run time
            write(api.codegen(model, backend=args.backend), output)
            return 0
    if args.command == "codegen":  # derived here, only what the module reads
        write(api.codegen(model, form=args.form, backend=args.backend, order=args.order), output)
        return 0
    derivation = api.derive(model, order=args.order, form=args.form)
    if args.command == "derive":
        write(api.derivation_text(derivation, form=args.form), output)
    elif args.command == "latex":
        write(api.latex(derivation, form=args.form, naming=args.naming), output)
    elif args.command == "structure":
        write(api.structure(derivation, form=args.form), output)
    elif args.command == "check":
        report = api.check(derivation, seed=args.seed, batch=args.batch, tol=args.tol, form=args.form,
                           backend=args.backend)
        print(report.format())
        return 0 if report.ok else 1
    return 0


def _show(caught: list, transcript: cache.Transcript) -> None:
    """einderiv's warnings as their own lines on standard error; any other warning as Python shows it
    (and then the command is not kept in the cache: its replay could not show it)."""
    for w in caught:
        if issubclass(w.category, EinderivWarning):
            print(str(w.message), file=sys.stderr)
            transcript.warned(str(w.message))
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
            transcript.text = None


def main(argv: list[str] | None = None, transcript: cache.Transcript | None = None) -> int:
    """``einderiv ARGS``: the exit code (see the module docstring).  ``transcript`` records what
    the command wrote (:mod:`einderiv.launch` keeps it in the cache)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    show = ("--traceback" in argv or "--debug" in argv) or bool(os.environ.get("EINDERIV_DEBUG"))
    transcript = transcript or cache.Transcript()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", EinderivWarning)
            try:
                with progress.shown(sys.stderr):  # progress on a terminal only; piped, stderr has errors only
                    return run(argv, transcript)
            finally:  # after the progress line is erased
                _show(caught, transcript)
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else 0
    except EinderivError as err:
        if show:
            traceback.print_exc()
        message = err.worded(spell)
        print(message if err.loc is not None else f"einderiv: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # an einderiv bug (InternalError or anything unforeseen), not bad input
        if show:
            traceback.print_exc()
        what = str(exc) if isinstance(exc, InternalError) else f"{type(exc).__name__}: {exc}"
        print(f"einderiv: internal error: {what} — this is a bug in einderiv; please report it"
              + ("" if show else " (rerun with --traceback for the details)"), file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
