"""Scale-out: the same models, data and metrics when one machine is not enough.

Builds on :mod:`recforge.models` and :mod:`recforge.data` only (never on evaluation):

* :mod:`recforge.scale.spark` (extra ``spark``): interactions to and from Spark DataFrames and
  Parquet with recforge's id maps, MLlib ALS behind recforge's interface, distributed batch
  top-N of any saved model, distributed item-item similarity, distributed metrics.

Nothing here imports pyspark at import time of :mod:`recforge.scale` itself.
"""
