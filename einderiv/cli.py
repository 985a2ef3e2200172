"""Command line: ``einderiv {derive,latex,codegen,check,structure} FILE [options]``.

Bad input (a file that does not parse or check, a bad option) prints one
line — ``file:line:col: what is wrong; what was expected`` — and exits 2.
``check`` exits 1 when a block disagrees with finite differences.
"""
from __future__ import annotations

import argparse
import os
import sys

from . import api
from .errors import EinderivError, UsageError

COMMANDS = {
    "derive": "print the derivation in index notation, with the structure summary",
    "latex": "write a standalone LaTeX document of the derivation",
    "codegen": "write a standalone NumPy module of gradient/Hessian/HVP kernels",
    "check": "run the generated kernels and compare every block with finite differences",
    "structure": "print, per parameter and Hessian block, its outer-product structure",
}


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line and exit code 2."""

    def error(self, message: str):  # noqa: D401 - argparse API
        raise UsageError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="einderiv", description="Symbolic index-notation derivatives of neural networks.")
    p.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    for name, helptext in COMMANDS.items():
        c = sub.add_parser(name, help=helptext, description=helptext)
        c.add_argument("file", help="network file (.ein)")
        c.add_argument("--order", type=int, default=2,
                       help="highest derivative order (default 2: gradients and Hessian blocks)")
        c.add_argument("--dim", action="append", default=[], metavar="NAME=SIZE",
                       help="give or replace the size of a dimension (repeatable)")
        c.add_argument("--depth", action="append", default=[], metavar="NAME=N",
                       help="give a layer template's depth (repeatable); without it, derive and latex "
                            "print the general form for any depth")
        if name in ("latex", "codegen", "derive", "structure"):
            c.add_argument("-o", "--output", metavar="OUT", help="write to OUT instead of stdout")
        if name in ("derive", "latex", "structure"):
            c.add_argument("--form", choices=("expanded", "compact"), default="expanded",
                           help="Hessian blocks in the paper's expanded form (default: every "
                                "Gauss-Newton and A'' term spelled out) or through the second-order "
                                "adjoints H[s,s'] (compact: shorter for deep or recurrent networks)")
        if name in ("codegen", "check"):
            c.add_argument("--form", choices=("compact", "expanded"), default="compact",
                           help="Hessian blocks through second-order adjoints hess[s,s'] (compact, the "
                                "default: O(L^2) terms) or in the paper's expanded form that "
                                "'derive' and 'latex' print")
        if name == "check":
            c.add_argument("--seed", type=int, default=0, help="random seed for parameters and data")
            c.add_argument("--batch", type=int, default=3, help="samples per batch (default 3)")
            c.add_argument("--tol", type=float, default=1e-6,
                           help="largest acceptable error, max|got-ref|/max(1,max|ref|) (default 1e-6)")
    return p


def _dims(items: list[str], option: str = "--dim") -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value.strip().lstrip("-").isdigit():
            raise UsageError(f"{option} expects NAME=SIZE with an integer SIZE, got '{item}'")
        out[name.strip()] = int(value)
    return out


def _write(text: str, output: str | None) -> None:
    if output:
        with open(output, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


def run(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.order < 1:
        raise UsageError(f"--order must be a positive integer, got {args.order}")
    dims = _dims(args.dim)
    from .analysis.template import run_command  # a layer template (`depth n`) with a symbolic depth

    general = run_command(args.command, args.file, dims, _dims(args.depth, "--depth"), args.order)
    if general is not None:
        _write(general, getattr(args, "output", None))
        return 0
    network = api.load(args.file, dims=dims)
    expanded = getattr(args, "form", "expanded") == "expanded"
    derivation = api.derive(network, order=args.order, expanded=expanded)
    if args.command == "derive":
        _write(api.derivation_text(derivation), args.output)
    elif args.command == "structure":
        _write(api.structure(derivation), args.output)
    elif args.command == "latex":
        _write(api.latex(derivation), args.output)
    elif args.command == "codegen":
        _write(api.codegen(derivation), args.output)
    elif args.command == "check":
        if args.batch < 1:
            raise UsageError(f"--batch must be a positive integer, got {args.batch}")
        report = api.check(derivation, seed=args.seed, batch=args.batch, tol=args.tol)
        print(report.format())
        return 0 if report.ok else 1
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        return run(argv)
    except EinderivError as err:
        print(f"einderiv: error: {err}" if err.loc is None else str(err), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # an einderiv bug, not bad input: say so in one line
        if "--debug" in argv or os.environ.get("EINDERIV_DEBUG"):
            raise
        print(f"einderiv: internal error: {type(exc).__name__}: {exc} "
              "(rerun with --debug for a traceback, and please report it)", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
