"""Entry script for ``spark-submit``: ``spark-submit [options] submit.py COMMAND ARGS`` runs
``recforge spark COMMAND ARGS`` on the cluster spark-submit names. ``python -m
recforge.scale.spark.submit --path`` prints this file's path."""

import sys

if __name__ == "__main__":
    if sys.argv[1:] == ["--path"]:
        print(__file__)
        sys.exit(0)
    from recforge.cli.main import main

    sys.exit(main(["spark", *sys.argv[1:]]))
