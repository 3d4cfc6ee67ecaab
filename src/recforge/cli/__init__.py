"""The ``recforge`` command line: ``recforge <subcommand> ...`` (see :mod:`recforge.cli.main`)."""
