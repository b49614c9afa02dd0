"""`python -m cbackprop`: the `cbackprop` command (see cbackprop.cli)."""
import sys

from cbackprop.cli import main

if __name__ == "__main__":
    sys.exit(main())
