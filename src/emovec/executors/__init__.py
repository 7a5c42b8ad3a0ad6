"""Where batches of model work run: in this process (``local``, the default) or on a Ray cluster (``ray``, an
optional extra: ``pip install emovec[ray]``). Both run the same keyed batches and hand each result back to the
caller, who writes it through the keyed store, so the two give the same rows and resume the same way.

Example:
    >>> from emovec.executors import ExecutorOptions, make_executor
    >>> ex = make_executor(ExecutorOptions(kind="ray", workers=4, gpus_per_worker=1), lm)
"""

from emovec.executors.base import Executor, ExecutorError, ExecutorOptions, LocalExecutor, ModelSpec
from emovec.executors.choose import check_available, make_executor, spec_of

__all__ = ["Executor", "ExecutorError", "ExecutorOptions", "LocalExecutor", "ModelSpec", "check_available",
           "make_executor", "spec_of"]
