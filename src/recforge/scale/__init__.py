"""Scale-out: the same models, data and metrics when one machine is not enough.

Builds on :mod:`recforge.models` and :mod:`recforge.data` only (never on evaluation):

* :mod:`recforge.scale.spark` (extra ``spark``): interactions to and from Spark DataFrames and
  Parquet with recforge's id maps, MLlib ALS behind recforge's interface, distributed batch
  top-N of any saved model, distributed item-item similarity, distributed metrics.
* :mod:`recforge.scale.distributed`: process groups (``torchrun`` or N local processes) for the
  data-parallel training of the torch models, which the neural base does itself.

Nothing here imports pyspark at import time of :mod:`recforge.scale` itself.
"""
