"""Entry script for ``spark-submit``: ``spark-submit [options] spark_submit.py COMMAND ARGS`` runs
``recforge spark COMMAND ARGS`` on the cluster spark-submit names. ``python -m
recforge.cli.spark_submit --path`` prints this file's path."""

import sys

if __name__ == "__main__":
    if sys.argv[1:] == ["--path"]:
        print(__file__)
        sys.exit(0)
    from recforge.cli.main import main  # the command line itself, on the cluster

    sys.exit(main(["spark", *sys.argv[1:]]))
