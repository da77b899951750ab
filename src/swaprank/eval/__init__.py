"""Measuring swaprank: BEIR-format loading, first stages, fusion, metrics and reports.

Everything here is for ``swaprank eval`` / ``swaprank bench`` and the benchmark scripts; none of it
is imported by the core, so the core never pulls in bm25s, ranx or matplotlib.
"""

from swaprank.eval.fusion import rrf
from swaprank.eval.loader import BeirDataset, DatasetError, load_beir

__all__ = ["BeirDataset", "DatasetError", "load_beir", "rrf"]
