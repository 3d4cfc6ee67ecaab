"""The data sets recforge knows by name: where they come from and how to read them.

Checksums
---------
GroupLens does not publish SHA-256 digests for its archives and the project does not store a
digest it has not computed itself, so ``sha256`` is ``None`` for every entry. The downloader
then checks the byte count against the server's ``Content-Length`` (a cut-off transfer is an
error), computes the SHA-256 of what it received and records it in the cache's manifest, and
later downloads of the same data set are compared with the recorded digest (a change is
reported). A caller who knows the digest passes ``sha256=`` and a mismatch is an error.

Manual downloads
----------------
YOOCHOOSE (RecSys Challenge 2015), DIGINETICA (CIKM Cup 2016) and Retailrocket require
accepting terms or logging in, so they cannot be fetched automatically: download them by hand
from the page in ``homepage`` and pass the directory to :func:`recforge.data.readers.load` or
``recforge datasets info``. ``rsc15-100k`` is a derived sample with no official archive.

Licences
--------
MovieLens and HetRec data are for research, non-commercial use and may not be redistributed;
read each data set's README before use. recforge never ships any of these files.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DatasetInfo", "CATALOG", "get", "names"]

_GROUPLENS = "https://files.grouplens.org/datasets"


@dataclass(frozen=True)
class DatasetInfo:
    """One known data set.

    Attributes
    ----------
    name : str
        Catalog name (also the cache folder name).
    format : str
        Reader name in :data:`recforge.data.readers.READERS`.
    kind : {'explicit', 'implicit', 'sessions'}
    description : str
    url : str or None
        Official archive URL; ``None`` for manual-download data sets.
    sha256 : str or None
        Expected SHA-256 of the archive, when known for certain.
    homepage : str
        Where to read the terms (and download by hand).
    rating_scale : (float, float) or None
    licence : str
        Short statement of the terms; read the data set's own README.
    """

    name: str
    format: str
    kind: str
    description: str
    url: str | None
    homepage: str
    sha256: str | None = None
    rating_scale: tuple[float, float] | None = None
    licence: str = "research use; see the data set's README"

    @property
    def manual(self) -> bool:
        """True when the data set must be downloaded by hand."""
        return self.url is None


_ML_TERMS = "GroupLens: research use, no redistribution, no commercial use without permission"

CATALOG: dict[str, DatasetInfo] = {d.name: d for d in [
    DatasetInfo("ml-100k", "movielens", "explicit",
                "MovieLens 100K: 100,000 ratings (1-5) by 943 users on 1,682 movies, 1998",
                f"{_GROUPLENS}/movielens/ml-100k.zip", "https://grouplens.org/datasets/movielens/100k/",
                rating_scale=(1.0, 5.0), licence=_ML_TERMS),
    DatasetInfo("ml-1m", "movielens", "explicit",
                "MovieLens 1M: 1,000,209 ratings (1-5) by 6,040 users on 3,706 movies, 2003",
                f"{_GROUPLENS}/movielens/ml-1m.zip", "https://grouplens.org/datasets/movielens/1m/",
                rating_scale=(1.0, 5.0), licence=_ML_TERMS),
    DatasetInfo("ml-10m", "movielens", "explicit",
                "MovieLens 10M: 10,000,054 ratings (0.5-5) and 95,580 tags, 2009",
                f"{_GROUPLENS}/movielens/ml-10m.zip", "https://grouplens.org/datasets/movielens/10m/",
                rating_scale=(0.5, 5.0), licence=_ML_TERMS),
    DatasetInfo("ml-20m", "movielens", "explicit",
                "MovieLens 20M: 20,000,263 ratings (0.5-5), tags and tag genome, 2015",
                f"{_GROUPLENS}/movielens/ml-20m.zip", "https://grouplens.org/datasets/movielens/20m/",
                rating_scale=(0.5, 5.0), licence=_ML_TERMS),
    DatasetInfo("ml-25m", "movielens", "explicit",
                "MovieLens 25M: 25,000,095 ratings (0.5-5), tags and tag genome, 2019",
                f"{_GROUPLENS}/movielens/ml-25m.zip", "https://grouplens.org/datasets/movielens/25m/",
                rating_scale=(0.5, 5.0), licence=_ML_TERMS),
    DatasetInfo("ml-32m", "movielens", "explicit",
                "MovieLens 32M: 32,000,204 ratings (0.5-5) and tags, 2023",
                f"{_GROUPLENS}/movielens/ml-32m.zip", "https://grouplens.org/datasets/movielens/32m/",
                rating_scale=(0.5, 5.0), licence=_ML_TERMS),
    DatasetInfo("ml-latest-small", "movielens", "explicit",
                "MovieLens latest-small (development set; the edition changes over time)",
                f"{_GROUPLENS}/movielens/ml-latest-small.zip",
                "https://grouplens.org/datasets/movielens/latest/",
                rating_scale=(0.5, 5.0), licence=_ML_TERMS),
    DatasetInfo("ml-latest", "movielens", "explicit",
                "MovieLens latest full (development set; the edition changes over time)",
                f"{_GROUPLENS}/movielens/ml-latest.zip",
                "https://grouplens.org/datasets/movielens/latest/",
                rating_scale=(0.5, 5.0), licence=_ML_TERMS),
    DatasetInfo("lastfm-2k", "lastfm", "implicit",
                "HetRec 2011 Last.fm 2K: user-artist play counts of 1,892 users, artist tags",
                f"{_GROUPLENS}/hetrec2011/hetrec2011-lastfm-2k.zip",
                "https://grouplens.org/datasets/hetrec-2011/",
                licence="HetRec 2011: non-commercial use; see readme.txt"),
    DatasetInfo("rsc15-100k", "gru4rec", "sessions",
                "100k-click YOOCHOOSE sample in GRU4Rec format (train_full/test, train_tr/valid)",
                None, "https://github.com/rn5l/session-rec",
                licence="RecSys Challenge 2015 data: research use"),
    DatasetInfo("yoochoose", "yoochoose", "sessions",
                "YOOCHOOSE clicks, RecSys Challenge 2015 (33M clicks, 9.2M sessions)",
                None, "https://recsys.acm.org/recsys15/challenge/",
                licence="RecSys Challenge 2015 terms (manual download)"),
    DatasetInfo("diginetica", "diginetica", "sessions",
                "DIGINETICA item views, CIKM Cup 2016 track 2",
                None, "https://competitions.codalab.org/competitions/11161",
                licence="CIKM Cup 2016 terms (manual download)"),
    DatasetInfo("retailrocket", "retailrocket", "implicit",
                "Retailrocket e-commerce events (views, add-to-cart, transactions), 4.5 months",
                None, "https://www.kaggle.com/datasets/retailrocket/ecommerce-dataset",
                licence="CC BY-NC-SA 4.0 (Kaggle login required)"),
]}


def get(name: str) -> DatasetInfo | None:
    """The catalog entry for ``name``, or ``None``."""
    return CATALOG.get(name)


def names() -> list[str]:
    """Known data set names in catalog order."""
    return list(CATALOG)
