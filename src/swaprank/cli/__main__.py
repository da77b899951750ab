"""``python -m swaprank.cli``: the same entry point as the ``swaprank`` script."""

from swaprank.cli import main

raise SystemExit(main())
