"""``python -m interp.cli``: the same as the ``interp`` command."""

from . import main

main()
