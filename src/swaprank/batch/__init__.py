"""``swaprank batch``: score millions of (query, document) pairs on Ray Data, resumably.

One concern per module: ``inputs`` (read and validate the pairs), ``manifest`` (what an output
directory was written for), ``parts`` (atomic Parquet parts and the rows they hold), ``scorer`` (the
Ray Data callable class, one Reranker per actor) and ``job`` (the run that ties them together).
Ray and pyarrow are imported only when a job runs (``pip install 'swaprank[ray]'``).
"""

from swaprank.batch.inputs import BatchInputError, read_pairs
from swaprank.batch.job import BatchSettings, BatchSummary, run_batch
from swaprank.batch.manifest import ResumeMismatchError
from swaprank.batch.parts import BatchOutputError, CorruptPartError, OutputLockedError, read_scores

__all__ = ["BatchInputError", "BatchOutputError", "BatchSettings", "BatchSummary", "CorruptPartError",
           "OutputLockedError", "ResumeMismatchError", "read_pairs", "read_scores", "run_batch"]
