"""Tiny models trained in the tests, saved as bundles under one models root."""

import uuid

import pandas as pd
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("prometheus_client")

from fastapi.testclient import TestClient  # noqa: E402

from recforge.data import Interactions, SessionEvents  # noqa: E402
from recforge.models.baseline import MostPopular  # noqa: E402
from recforge.models.neighborhood.topn import ItemKNNTopN  # noqa: E402
from recforge.models.session.baselines import MarkovChain  # noqa: E402
from recforge.serving import Settings, save_bundle  # noqa: E402
from recforge.serving.app import create_app  # noqa: E402
from recforge.serving.config import Rules  # noqa: E402

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TITLES = {"10": "Ten", "20": "Twenty", "30": "Thirty Adult", "40": "Forty", "50": "Fifty"}


def ratings() -> Interactions:
    users = [1, 1, 1, 2, 2, 2, 3, 3, 4, 4, 5, 5, 6]
    items = [10, 20, 30, 10, 20, 40, 20, 30, 30, 40, 10, 50, 20]
    return Interactions.from_arrays(users, items)


def sessions() -> SessionEvents:
    # transitions: 10 -> 20 (x3), 20 -> 30 (x2), 20 -> 40 (x1), 40 -> 50
    df = pd.DataFrame({"session": [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4],
                       "item": [10, 20, 30, 10, 20, 40, 10, 20, 30, 40, 50],
                       "timestamp": range(11)})
    return SessionEvents.from_dataframe(df)


@pytest.fixture(scope="session")
def models_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    save_bundle(ItemKNNTopN(k=5).fit(ratings()), root / "knn", titles=TITLES)
    save_bundle(MostPopular().fit(ratings()), root / "pop", titles=TITLES)
    save_bundle(MarkovChain().fit(sessions()), root / "markov", titles=TITLES)
    return root


@pytest.fixture
def make_client(models_root, tmp_path):
    """A client over a fresh store; ``make_client("knn", rules=...)``."""
    token_file = tmp_path / "tokens"
    token_file.write_text(f"# writers\n{TOKEN}\n")

    def make(model_dir="knn", store=None, **kw):
        settings = Settings(models_root=str(models_root), store=str(store or tmp_path / "store.sqlite"),
                            model_dir=model_dir, token_file=str(token_file), **kw)
        return TestClient(create_app(settings))

    return make


@pytest.fixture
def client(make_client):
    return make_client("knn")


__all__ = ["AUTH", "TITLES", "Rules", "ratings", "sessions"]


@pytest.fixture(scope="session")
def pg_cluster():
    """A throwaway PostgreSQL server (see pg.py); skips when it cannot run here."""
    pytest.importorskip("psycopg", reason='psycopg missing (pip install "psycopg[binary]")')
    from .pg import Cluster, find_bin

    bindir = find_bin()
    if bindir is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not found")
    try:
        cluster = Cluster(bindir).start()
    except (RuntimeError, OSError, KeyError) as exc:
        pytest.skip(f"cannot start a PostgreSQL cluster here: {exc}")
    yield cluster
    cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_spec(request, tmp_path):
    """A fresh, empty store of each kind: a SQLite path, or a new PostgreSQL database URL."""
    if request.param == "sqlite":
        return str(tmp_path / "store.sqlite")
    cluster = request.getfixturevalue("pg_cluster")
    return cluster.new_database(f"t{uuid.uuid4().hex[:12]}")
