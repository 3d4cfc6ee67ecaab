"""recforge: recommender systems from the classics to deep learning."""

from ._version import __version__

__all__ = ["__version__", "Dataset", "DataError", "IdMap", "Interactions", "ItemFeatures", "SessionEvents"]

_FROM_DATA = frozenset(__all__[1:])


def __getattr__(name: str):
    # the data classes load on first use, so that `recforge` (the command) starts, and can be
    # interrupted cleanly, before pandas and NumPy are imported
    if name in _FROM_DATA:
        from . import data

        return getattr(data, name)
    import importlib

    try:
        return importlib.import_module(f".{name}", __name__)
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{name}":
            raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
