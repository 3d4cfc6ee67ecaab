"""One place that builds Spark sessions, so that every Spark process binds where it should.

By default everything listens on and connects to 127.0.0.1 only: ``SPARK_LOCAL_IP`` is set for
the JVM the session starts, and ``spark.driver.host`` / ``spark.driver.bindAddress`` are set on
the session (a standalone cluster started for tests binds its master and workers to 127.0.0.1
as well, see ``tests/scale/cluster.py``). The Spark UI is off unless asked for. Python workers
run the interpreter of the driver (``spark.pyspark.python``) with the driver's ``PYTHONPATH``,
so that recforge imports on the executors as it does on the driver; an explicit
``PYSPARK_PYTHON`` in the environment wins.

A real multi-machine cluster needs the driver reachable from the executors: pass its address
as ``driver_host`` (``recforge spark ... --driver-host``); nothing else changes.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings

logger = logging.getLogger(__name__)

LOCALHOST = "127.0.0.1"


def require_pyspark():
    """Import pyspark or raise an ImportError that says how to install it."""
    try:
        import pyspark
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("recforge.scale.spark needs pyspark: pip install 'recforge[spark]'") from None
    # PySpark 4.x warns on every pandas conversion under pandas 3; the conversions recforge
    # uses (Arrow batches of numbers and strings) are covered by its tests.
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas",
                            category=FutureWarning)
    return pyspark


def spark_session(master: str | None = "local[2]", app_name: str = "recforge", *,
                  partitions: int | None = None, driver_host: str = LOCALHOST,
                  ui: bool = False, executor_memory: str | None = None,
                  driver_memory: str | None = None, conf: dict | None = None):
    """A SparkSession bound to ``driver_host`` (127.0.0.1 by default), UI off.

    Parameters
    ----------
    master : str or None, default "local[2]"
        Spark master URL (``local[N]``, ``spark://127.0.0.1:7077``, ...). ``None`` keeps what
        ``spark-submit`` (or an active session) set.
    app_name : str
    partitions : int, optional
        ``spark.sql.shuffle.partitions`` (Spark's default of 200 is far too many for small
        data on few cores).
    driver_host : str, default "127.0.0.1"
        Address the driver binds to and advertises.
    ui : bool, default False
        Start the Spark web UI (on ``driver_host``).
    executor_memory, driver_memory : str, optional
        e.g. ``"1g"``.
    conf : dict, optional
        Further Spark settings; they win over the ones above.

    Returns
    -------
    pyspark.sql.SparkSession
        An already running session is returned as it is (Spark keeps one per process); its
        settings are not changed.
    """
    require_pyspark()
    from pyspark.sql import SparkSession

    if driver_host == LOCALHOST or "SPARK_LOCAL_IP" not in os.environ:
        os.environ["SPARK_LOCAL_IP"] = driver_host
    settings = {
        "spark.driver.host": driver_host,
        "spark.driver.bindAddress": driver_host if driver_host == LOCALHOST else "0.0.0.0",
        "spark.ui.enabled": "true" if ui else "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.session.timeZone": "UTC",
    }
    if ui:
        settings["spark.ui.bindAddress"] = driver_host if driver_host == LOCALHOST else "0.0.0.0"
    python = os.environ.get("PYSPARK_PYTHON") or sys.executable
    os.environ["PYSPARK_PYTHON"] = python  # what SparkContext reads for its Python workers
    settings["spark.pyspark.python"] = python
    settings["spark.pyspark.driver.python"] = sys.executable
    path = os.environ.get("PYTHONPATH") or _own_source_root()
    if path:
        settings["spark.executorEnv.PYTHONPATH"] = path
    if driver_host == LOCALHOST:  # executors elsewhere bind to their own addresses
        settings["spark.executorEnv.SPARK_LOCAL_IP"] = LOCALHOST
    if partitions is not None:
        settings["spark.sql.shuffle.partitions"] = str(int(partitions))
        settings["spark.default.parallelism"] = str(int(partitions))
    if executor_memory:
        settings["spark.executor.memory"] = executor_memory
    if driver_memory:
        settings["spark.driver.memory"] = driver_memory
    settings.update({k: str(v) for k, v in (conf or {}).items()})
    builder = SparkSession.builder.appName(app_name)
    if master is not None:
        builder = builder.master(master)
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def _own_source_root() -> str | None:
    """The directory recforge is imported from, when it is not installed (a source checkout):
    the executors need it on their path too."""
    import recforge

    root = os.path.dirname(os.path.dirname(os.path.abspath(recforge.__file__)))
    return None if "site-packages" in root else root
