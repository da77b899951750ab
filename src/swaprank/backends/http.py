"""Moved to :mod:`swaprank.net` (one module per concern); kept so third-party backends that
imported ``swaprank.backends.http`` keep working."""

from swaprank.net import *  # noqa: F403
from swaprank.net import __all__  # noqa: F401
