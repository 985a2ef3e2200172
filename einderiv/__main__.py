"""``python -m einderiv ARGS``: the ``einderiv`` command (:mod:`einderiv.launch`)."""
import sys

from .launch import main

if __name__ == "__main__":
    sys.exit(main())
