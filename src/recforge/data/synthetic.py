"""Seeded synthetic data: explicit ratings, implicit counts and sessions, with no network needed.

All three generators share one idea: a small latent "world" drawn from
``numpy.random.default_rng(seed)`` (never the global state), from which the observable data are
sampled with vectorized NumPy, so that the same seed and sizes always give the same data and
1M ratings take a few seconds.

Ratings (:func:`generate_ratings`)
    A biased latent-factor model (Koren, Bell & Volinsky, "Matrix factorization techniques for
    recommender systems", IEEE Computer 2009, eq. 4): ``r_ui = mu + b_u + b_i + p_u . q_i / sqrt(d)
    + noise``, rounded to the star scale. Item factors cluster around one direction per genre,
    so genres (and the release year, a linear function of the factors plus noise) carry signal
    for content-based models. *Which* items a user rates is not random either: a user picks a
    genre with probability rising with the affinity ``p_u . c_g`` and then an item of that genre
    by popularity (long-tailed, Zipf-like), so the data are missing not at random, as in real
    rating logs, and ranking models have personal signal to learn beyond popularity.
Implicit events (:func:`generate_implicit`)
    The same selection model with replacement: repeated events on one (user, item) pair add up
    to a count.
Sessions (:func:`generate_sessions`)
    Each topic (a latent session intent) is a fixed path through the catalogue; a session walks
    along its topic's path one to three steps at a time, sometimes drifts to another topic,
    revisits an earlier item, or clicks a popular item at random. Items lie on several paths
    (popular items on many), so the last item alone leaves the next one ambiguous while the last
    two or three identify the intent: a model with memory (an RNN) can beat first-order
    co-occurrence models, which is what the GRU4Rec papers show on real click logs.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .dataset import Dataset
from .errors import DropReport
from .features import ItemFeatures
from .idmap import IdMap
from .interactions import Interactions
from .sessions import SessionEvents, drop_short_sessions, split_by_end_time

logger = logging.getLogger(__name__)

GENRES = ("Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama",
          "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
          "War", "Western")
_ADJECTIVES = ("Silent", "Crimson", "Broken", "Golden", "Hidden", "Last", "Lost", "Midnight", "Wild",
               "Distant", "Frozen", "Burning", "Electric", "Hollow", "Secret", "Savage", "Gentle",
               "Iron", "Paper", "Velvet", "Endless", "Falling", "Northern", "Bitter", "Quiet",
               "Restless", "Scarlet", "Shattered", "Sudden", "Wandering")
_NOUNS = ("River", "Empire", "Garden", "Horizon", "Kingdom", "Letter", "Machine", "Mirror", "Ocean",
          "Orchard", "Promise", "Road", "Shadow", "Signal", "Storm", "Summer", "Thief", "Voyage",
          "Winter", "Witness", "Harbor", "Island", "Lantern", "Mountain", "Passage", "Planet",
          "Ritual", "Station", "Tide", "Village")
_SEQUELS = ("", " II", " III", " IV", " V")

EPOCH = 946684800.0  # 2000-01-01T00:00:00Z: where synthetic time starts
DAY = 86400.0


# ---------------------------------------------------------------------------- the latent world
class _World:
    """Users, items, genres and the selection model shared by ratings and implicit events."""

    def __init__(self, rng: np.random.Generator, n_users: int, n_items: int, n_factors: int,
                 popularity_exponent: float = 0.9, genre_affinity: float = 2.0,
                 uniform_share: float = 0.15):
        d = n_factors
        n_genres = len(GENRES)
        self.n_users, self.n_items, self.n_factors = n_users, n_items, d
        self.genre_dirs = rng.normal(0.0, 1.0, (n_genres, d))
        genre_weight = (1.0 + rng.permutation(n_genres)) ** -0.8  # a few big genres (drama...)
        self.primary = rng.choice(n_genres, size=n_items, p=genre_weight / genre_weight.sum())
        # item factors: around the primary genre's direction, so genres predict taste
        self.item_factors = 0.8 * self.genre_dirs[self.primary] + 0.6 * rng.normal(0.0, 1.0, (n_items, d))
        self.user_factors = rng.normal(0.0, 1.0, (n_users, d))
        # long-tailed popularity over a random order of items
        rank = 1.0 + rng.permutation(n_items)
        self.popularity = rank ** -popularity_exponent
        # genre choice per user: softmax of affinity, mixed with the genre's size so that every
        # item keeps a non-zero probability for every user
        size = np.bincount(self.primary, minlength=n_genres).astype(np.float64)
        affinity = self.user_factors @ self.genre_dirs.T / np.sqrt(d)
        logits = genre_affinity * affinity
        soft = np.exp(logits - logits.max(axis=1, keepdims=True)) * size
        soft /= soft.sum(axis=1, keepdims=True)
        self.genre_pref = (1.0 - uniform_share) * soft + uniform_share * size / size.sum()
        # per-genre inverse-CDF table over items: genre g occupies keys (g, g + 1]
        self.items_by_genre = np.argsort(self.primary, kind="stable")
        g_sorted = self.primary[self.items_by_genre]
        self.genre_start = np.searchsorted(g_sorted, np.arange(n_genres))
        self.genre_end = np.searchsorted(g_sorted, np.arange(n_genres), side="right")
        pop_sorted = self.popularity[self.items_by_genre]
        genre_total = np.bincount(g_sorted, weights=pop_sorted, minlength=n_genres)
        cum = np.cumsum(pop_sorted)
        before = np.concatenate(([0.0], np.cumsum(genre_total)[:-1]))
        with np.errstate(invalid="ignore", divide="ignore"):
            within = (cum - before[g_sorted]) / genre_total[g_sorted]
        last = self.genre_end[self.genre_end > 0] - 1
        within[last] = 1.0
        self.item_keys = g_sorted + within
        self.item_prob_in_genre = self.popularity / genre_total[self.primary]
        # per-user inverse-CDF table over genres: user u occupies keys (u, u + 1]
        ucdf = np.cumsum(self.genre_pref, axis=1)
        ucdf[:, -1] = 1.0
        self.user_keys = (np.arange(n_users)[:, None] + ucdf).ravel()

    def item_probability(self, users: np.ndarray) -> np.ndarray:
        """P(item | user) for each given user, shape (len(users), n_items)."""
        return self.genre_pref[users][:, self.primary] * self.item_prob_in_genre[None, :]

    def draw_items(self, rng: np.random.Generator, users: np.ndarray) -> np.ndarray:
        """One item per entry of ``users``, drawn from P(item | user) (with replacement)."""
        n_genres = len(GENRES)
        pos = np.searchsorted(self.user_keys, users + rng.random(users.size))
        genres = np.clip(pos - users.astype(np.int64) * n_genres, 0, n_genres - 1)
        pos = np.searchsorted(self.item_keys, genres + rng.random(users.size))
        pos = np.clip(pos, self.genre_start[genres], self.genre_end[genres] - 1)
        return self.items_by_genre[pos]

    def sample_distinct(self, rng: np.random.Generator, per_user: np.ndarray,
                        max_rounds: int = 12) -> tuple[np.ndarray, np.ndarray]:
        """``per_user[u]`` distinct items for every user, drawn without replacement.

        Successive sampling: items are drawn from P(item | user) with replacement and the first
        ``per_user[u]`` distinct ones kept, which is exactly weighted sampling without
        replacement. Users still short after ``max_rounds`` (near-saturated rows) finish with the
        equivalent Gumbel-top-k over their remaining items.
        """
        n_items = self.n_items
        need = per_user.astype(np.int64).copy()
        taken = np.empty(0, dtype=np.int64)  # sorted keys user * n_items + item
        for _ in range(max_rounds):
            active = np.flatnonzero(need > 0)
            if active.size == 0:
                break
            draws = np.ceil(need[active] * 1.3).astype(np.int64) + 2
            users = np.repeat(active, draws)
            keys = users * n_items + self.draw_items(rng, users)
            # first appearance of each pair in draw order, unless taken in an earlier round
            order = np.argsort(keys, kind="stable")
            sk = keys[order]
            first = np.ones(sk.size, dtype=bool)
            first[1:] = sk[1:] != sk[:-1]
            cand = sk[first]
            at = np.searchsorted(taken, cand)
            seen = at < taken.size
            seen[seen] = taken[at[seen]] == cand[seen]
            fresh = np.sort(order[first][~seen])
            u_fresh = users[fresh]
            # rank of each fresh pair within its user (users are grouped, draws in order)
            counts = np.bincount(u_fresh, minlength=self.n_users)
            start = np.concatenate(([0], np.cumsum(counts)[:-1]))
            rank = np.arange(fresh.size) - start[u_fresh]
            keep = rank < need[u_fresh]
            taken = np.sort(np.concatenate((taken, keys[fresh[keep]])))
            need -= np.bincount(u_fresh[keep], minlength=self.n_users)
        short = np.flatnonzero(need > 0)
        if short.size:
            logger.debug("synthetic: %d users finished by Gumbel-top-k", short.size)
            batch = max(1, int(2e7 // max(n_items, 1)))
            extra = []
            for s in range(0, short.size, batch):
                us = short[s:s + batch]
                with np.errstate(divide="ignore"):
                    score = np.log(self.item_probability(us)) + rng.gumbel(size=(us.size, n_items))
                tk = taken[(taken >= us[0] * n_items) & (taken < (us[-1] + 1) * n_items)]
                tu = np.searchsorted(us, tk // n_items)
                hit = us[np.minimum(tu, us.size - 1)] == tk // n_items
                score[tu[hit], tk[hit] % n_items] = -np.inf
                order = np.argsort(-score, axis=1, kind="stable")
                cols = np.arange(n_items)[None, :] < need[us][:, None]
                extra.append(us[:, None].repeat(n_items, 1)[cols] * n_items + order[cols])
            taken = np.sort(np.concatenate([taken, *extra]))
        return taken // n_items, taken % n_items

    def item_features(self, rng: np.random.Generator, item_map: IdMap) -> ItemFeatures:
        """Titles, multi-hot genres (primary + related by factor proximity) and a release year."""
        n, d = self.n_items, self.n_factors
        # secondary genres: more likely the closer the item's factors are to the genre direction
        closeness = self.item_factors @ self.genre_dirs.T / np.sqrt(d)
        p_extra = 1.0 / (1.0 + np.exp(-(2.0 * closeness - 4.7)))
        member = rng.random(p_extra.shape) < p_extra
        member[np.arange(n), self.primary] = True
        genres = sp.csr_matrix(member.astype(np.float32))
        # release year: a linear function of the factors plus noise (content correlated with taste)
        year_dir = rng.normal(0.0, 1.0, d) / np.sqrt(d)
        year = 1992.0 + 9.0 * (self.item_factors @ year_dir) + rng.normal(0.0, 5.0, n)
        year = np.clip(np.round(year), 1920, 2024)
        features = ItemFeatures(item_map=item_map, titles=_titles(rng, year))
        features.present["title"] = np.ones(n, dtype=bool)
        features.categorical["genres"] = (genres, list(GENRES))
        features.present["genres"] = np.diff(genres.indptr) > 0
        features.add_numeric("year", year)
        return features


def _titles(rng: np.random.Generator, year: np.ndarray) -> np.ndarray:
    """Readable, unique titles such as ``"The Silent River (1994)"``."""
    n = year.size
    adj = np.asarray(_ADJECTIVES)[rng.integers(0, len(_ADJECTIVES), n)]
    noun = np.asarray(_NOUNS)[rng.integers(0, len(_NOUNS), n)]
    noun2 = np.asarray(_NOUNS)[rng.integers(0, len(_NOUNS), n)]
    pattern = rng.integers(0, 3, n)
    base = np.where(pattern == 0, np.char.add("The ", np.char.add(np.char.add(adj, " "), noun)),
                    np.where(pattern == 1, np.char.add(np.char.add(adj, " "), noun),
                             np.char.add(np.char.add(noun, " of the "), np.char.add(np.char.add(adj, " "), noun2))))
    # repeated titles become sequels, then get a running number if still not unique
    dup = pd.Series(base).groupby(base).cumcount().to_numpy()
    suffix = np.where(dup < len(_SEQUELS), np.asarray(_SEQUELS)[np.minimum(dup, len(_SEQUELS) - 1)],
                      np.char.add(" ", (dup + 1).astype(str)))
    years = year.astype(np.int64).astype(str)
    return np.char.add(np.char.add(base, suffix), np.char.add(np.char.add(" (", years), ")")).astype(str)


def _check_sizes(**sizes) -> None:
    for name, value in sizes.items():
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _per_user_counts(rng: np.random.Generator, n_users: int, total: int, cap: int,
                     minimum: int) -> np.ndarray:
    """Long-tailed (log-normal activity) counts per user summing to ``total``, each in [minimum, cap]."""
    activity = rng.lognormal(0.0, 1.0, n_users)
    minimum = min(minimum, total // n_users, cap)
    counts = np.full(n_users, minimum, dtype=np.int64)
    left = total - counts.sum()
    while left > 0:
        room = counts < cap
        p = activity * room
        counts += rng.multinomial(left, p / p.sum())
        over = np.maximum(counts - cap, 0)
        counts -= over
        left = int(over.sum())
    return counts


def _user_times(rng: np.random.Generator, users: np.ndarray, n_users: int,
                span_days: float) -> np.ndarray:
    """Event times: each user is active over a window (long-tailed length) inside the span."""
    span = span_days * DAY
    start = rng.uniform(0.0, 0.9 * span, n_users)
    length = np.minimum(span - start, DAY + rng.exponential(60.0 * DAY, n_users))
    return np.floor(EPOCH + start[users] + length[users] * rng.random(users.size))


# ---------------------------------------------------------------------------- public generators
def generate_ratings(n_users: int = 943, n_items: int = 1682, n_ratings: int = 100_000,
                     n_factors: int = 8, half_stars: bool = False, seed: int | None = 0,
                     noise: float = 0.65, span_days: float = 3 * 365.0) -> Dataset:
    """Explicit 1-5 star ratings (or 0.5-5 in half stars) from a biased latent-factor model.

    The model (see the module docstring) is ``r_ui = mu + b_u + b_i + 0.9 p_u . q_i / sqrt(d) + e``
    with ``mu = 2.9``, ``b_u ~ N(0, 0.5^2)``, ``b_i`` = ``N(0, 0.4^2)`` plus a share of the
    item's log-popularity (popular items are liked more), ``p_u, q_i`` in ``R^d``,
    ``e ~ N(0, noise^2)``, rounded to the nearest star (or half star) and clipped to the scale.
    Who rates what follows the genre-affinity selection model, so each user rates exactly
    ``per_user[u]`` distinct items, with long-tailed user activity (at least 20 ratings per user
    when the sizes allow, as in MovieLens) and long-tailed item popularity.

    Parameters
    ----------
    n_users, n_items : int
        Sizes of the user and item index (raw ids ``1..n``); items nobody rated stay in the maps.
    n_ratings : int
        Exact number of (user, item) ratings; at most ``n_users * n_items``.
    n_factors : int
        Latent dimension ``d``.
    half_stars : bool
        Ratings in steps of 0.5 on ``(0.5, 5)`` instead of whole stars on ``(1, 5)``.
    seed : int, optional
        Everything is drawn from ``numpy.random.default_rng(seed)``.
    noise : float
        Standard deviation of the rating noise ``e``.
    span_days : float
        Length of the period the timestamps cover (starting 2000-01-01).

    Returns
    -------
    Dataset
        ``interactions`` (explicit, timestamps in unix seconds, ``rating_scale`` (1, 5) or
        (0.5, 5)) and ``item_features`` (``titles``, categorical ``"genres"`` multi-hot over 18
        genres, numeric ``"year"``).

    Examples
    --------
    >>> data = generate_ratings(n_users=50, n_items=40, n_ratings=500, seed=1)
    >>> data.interactions.nnz, data.interactions.rating_scale
    (500, (1.0, 5.0))
    """
    _check_sizes(n_users=n_users, n_items=n_items, n_ratings=n_ratings, n_factors=n_factors)
    n_users, n_items, n_ratings, d = int(n_users), int(n_items), int(n_ratings), int(n_factors)
    if n_ratings > n_users * n_items:
        raise ValueError(f"n_ratings={n_ratings} exceeds n_users * n_items = {n_users * n_items}")
    rng = np.random.default_rng(seed)
    world = _World(rng, n_users, n_items, d)
    # heavy users rate at most 40% of the catalogue (MovieLens 100K: 737 of 1682) when possible
    cap = min(n_items, max(int(0.4 * n_items), -(-2 * n_ratings // n_users)))
    per_user = _per_user_counts(rng, n_users, n_ratings, cap=cap, minimum=20)
    users, items = world.sample_distinct(rng, per_user)
    user_bias = rng.normal(0.0, 0.5, n_users)
    log_pop = np.log(world.popularity)
    item_bias = rng.normal(0.0, 0.4, n_items) + 0.2 * (log_pop - log_pop.mean()) / (log_pop.std() + 1e-12)
    # row-wise dot products in chunks keep memory at O(chunk * d)
    affinity = np.empty(users.size)
    for s in range(0, users.size, 1 << 18):
        u, i = users[s:s + (1 << 18)], items[s:s + (1 << 18)]
        affinity[s:s + u.size] = np.einsum("ij,ij->i", world.user_factors[u], world.item_factors[i])
    raw = 2.9 + user_bias[users] + item_bias[items] + 0.9 * affinity / np.sqrt(d) \
        + rng.normal(0.0, noise, users.size)
    if half_stars:
        scale = (0.5, 5.0)
        ratings = np.clip(np.round(raw * 2.0) / 2.0, *scale)
    else:
        scale = (1.0, 5.0)
        ratings = np.clip(np.round(raw), *scale)
    times = _user_times(rng, users, n_users, span_days)
    user_map = IdMap(np.arange(1, n_users + 1))
    item_map = IdMap(np.arange(1, n_items + 1))
    name = "synthetic"
    inter = Interactions(users, items, ratings, user_map=user_map, item_map=item_map,
                         timestamps=times, kind="explicit", rating_scale=scale, name=name, _sorted=True)
    return Dataset(name=name, interactions=inter, item_features=world.item_features(rng, item_map),
                   source=f"recforge.data.synthetic.generate_ratings(seed={seed})")


def generate_implicit(n_users: int = 1000, n_items: int = 2000, n_events: int = 100_000,
                      n_factors: int = 8, seed: int | None = 0, span_days: float = 365.0) -> Dataset:
    """Implicit feedback: events drawn with replacement, summed into counts per (user, item).

    Each user's number of events is long-tailed; each event picks an item from the same
    genre-affinity selection model as :func:`generate_ratings`, with replacement, so favourite
    items are consumed repeatedly (counts above 1) and the pattern of *which* items a user
    consumes is personal.

    Parameters
    ----------
    n_users, n_items : int
    n_events : int
        Total number of events; the number of (user, item) pairs is smaller (repeats add up).
    n_factors : int
    seed : int, optional
    span_days : float

    Returns
    -------
    Dataset
        ``interactions`` (implicit, value = number of events, timestamp = the pair's last event)
        and ``item_features`` as in :func:`generate_ratings`.
    """
    _check_sizes(n_users=n_users, n_items=n_items, n_events=n_events, n_factors=n_factors)
    n_users, n_items, n_events = int(n_users), int(n_items), int(n_events)
    rng = np.random.default_rng(seed)
    world = _World(rng, n_users, n_items, int(n_factors), genre_affinity=2.5)
    per_user = _per_user_counts(rng, n_users, n_events, cap=n_events, minimum=5)
    users = np.repeat(np.arange(n_users), per_user)
    items = world.draw_items(rng, users)
    times = _user_times(rng, users, n_users, span_days)
    keys = users.astype(np.int64) * n_items + items
    uniq, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    last = np.full(uniq.size, -np.inf)
    np.maximum.at(last, inverse, times)
    user_map = IdMap(np.arange(1, n_users + 1))
    item_map = IdMap(np.arange(1, n_items + 1))
    name = "synthetic-implicit"
    inter = Interactions(uniq // n_items, uniq % n_items, counts, user_map=user_map,
                         item_map=item_map, timestamps=last, kind="implicit", name=name, _sorted=True)
    return Dataset(name=name, interactions=inter, item_features=world.item_features(rng, item_map),
                   source=f"recforge.data.synthetic.generate_implicit(seed={seed})")


def generate_sessions(n_sessions: int = 20_000, n_items: int = 1_000, mean_length: float = 5.0,
                      seed: int | None = 0, test_days: float = 1, n_days: float = 14,
                      n_topics: int | None = None, memberships: float = 4.0) -> Dataset:
    """Anonymous click sessions with learnable sequential structure, already split.

    A topic ``t`` is a path (a fixed sequence of ``L`` items); item ``i`` lies on ``m_i >= 1``
    paths with ``m_i`` growing with its (long-tailed) popularity and averaging ``memberships``.
    A session starts at a random position of a topic drawn by topic popularity; each next event

    * with probability 0.70 advances along the path by 1, 2 or 3 positions (p = 0.6, 0.3, 0.1),
    * with probability 0.07 drifts to another topic (random position),
    * with probability 0.05 revisits an item clicked earlier in the session,
    * with probability 0.08 is a random popular item (the session's state is unchanged),

    (the remaining 0.10: also an advance, so advances make 0.80 in all). Session lengths are
    geometric with mean ``mean_length`` (so some sessions have one event, as in real logs, and
    the split removes them). Start times are uniform over ``n_days`` days from 2000-01-01, events
    a minute or so apart.

    Parameters
    ----------
    n_sessions : int
    n_items : int
    mean_length : float
        Mean number of events per session (at least 1).
    seed : int, optional
    test_days : float
        Passed to :func:`recforge.split.session_split` to make ``parts``.
    n_days : float
        Days covered by the log.
    n_topics : int, optional
        Number of latent intents; default ``max(4, n_items // 25)``.
    memberships : float
        Mean number of paths an item lies on (the ambiguity of the last item; at least 1).

    Returns
    -------
    Dataset
        ``sessions``: all sessions (raw session ids ``1..n_sessions`` in order of start time, raw
        item ids ``1..n_items``); ``parts``: ``{"train": ..., "test": ...}`` from
        :func:`recforge.split.session_split` (the test part on the train part's item index);
        ``drops``: what that split removed.
    """
    _check_sizes(n_sessions=n_sessions, n_items=n_items)
    if not mean_length >= 1:
        raise ValueError(f"mean_length must be at least 1, got {mean_length}")
    if not memberships >= 1:
        raise ValueError(f"memberships must be at least 1, got {memberships}")
    n_sessions, n_items = int(n_sessions), int(n_items)
    rng = np.random.default_rng(seed)
    n_topics = int(n_topics) if n_topics is not None else max(4, n_items // 25)
    path_len = max(4, int(round(memberships * n_items / n_topics)))
    n_slots = n_topics * path_len
    popularity = (1.0 + rng.permutation(n_items)) ** -0.8
    pop_cdf = np.cumsum(popularity / popularity.sum())
    pop_cdf[-1] = 1.0
    # every item on at least one path; the remaining slots go to items by popularity
    copies = 1 + rng.multinomial(max(n_slots - n_items, 0), popularity / popularity.sum())
    paths = rng.permutation(np.repeat(np.arange(n_items), copies))[:n_slots].reshape(n_topics, path_len)
    topic_pop = (1.0 + rng.permutation(n_topics)) ** -0.7
    topic_cdf = np.cumsum(topic_pop / topic_pop.sum())
    topic_cdf[-1] = 1.0

    lengths = np.minimum(rng.geometric(1.0 / mean_length, n_sessions), 200)
    max_len = int(lengths.max())
    # simulate longest sessions first, so the active sessions at step j are a prefix
    by_length = np.argsort(-lengths, kind="stable")
    n_active = np.searchsorted(-lengths[by_length], -np.arange(max_len), side="right")
    hist = np.zeros((n_sessions, max_len), dtype=np.int32)
    topic = np.searchsorted(topic_cdf, rng.random(n_sessions)).clip(0, n_topics - 1)
    pos = rng.integers(0, path_len, n_sessions)
    hist[:, 0] = paths[topic, pos]
    for j in range(1, max_len):
        a = int(n_active[j])
        r = rng.random(a)
        noise = r < 0.08
        revisit = (r >= 0.08) & (r < 0.13)
        drift = (r >= 0.13) & (r < 0.20)
        advance = r >= 0.20
        u_step = rng.random(a)
        step = 1 + (u_step >= 0.6).astype(np.int64) + (u_step >= 0.9)
        pos[:a][advance] = (pos[:a][advance] + step[advance]) % path_len
        nd = int(drift.sum())
        topic[:a][drift] = np.searchsorted(topic_cdf, rng.random(nd)).clip(0, n_topics - 1)
        pos[:a][drift] = rng.integers(0, path_len, nd)
        nxt = paths[topic[:a], pos[:a]]
        nxt[noise] = np.searchsorted(pop_cdf, rng.random(int(noise.sum()))).clip(0, n_items - 1)
        earlier = rng.integers(0, j, a)
        nxt[revisit] = hist[np.arange(a)[revisit], earlier[revisit]]
        hist[:a, j] = nxt
    hist_sorted = hist  # rows follow by_length
    len_sorted = lengths[by_length]
    # back to start-time order: session k (raw id k+1) starts k-th
    starts = np.sort(rng.uniform(0.0, n_days * DAY, n_sessions))
    row_of = np.empty(n_sessions, dtype=np.int64)
    row_of[by_length] = np.arange(n_sessions)  # session i's row in hist_sorted
    sess_lengths = len_sorted[row_of]
    offsets = np.zeros(n_sessions + 1, dtype=np.int64)
    np.cumsum(sess_lengths, out=offsets[1:])
    col = np.arange(offsets[-1]) - np.repeat(offsets[:-1], sess_lengths)
    rows = np.repeat(row_of, sess_lengths)
    items = hist_sorted[rows, col]
    gaps = 5.0 + rng.exponential(55.0, offsets[-1])
    gaps[offsets[:-1]] = 0.0
    within = np.cumsum(gaps)
    within -= np.repeat(within[offsets[:-1]], sess_lengths)
    times = np.round(EPOCH + np.repeat(starts, sess_lengths) + within, 3)
    name = "synthetic-sessions"
    sessions = SessionEvents(items, times, offsets, session_map=IdMap(np.arange(1, n_sessions + 1)),
                             item_map=IdMap(np.arange(1, n_items + 1)), name=name)
    # the split of recforge.split.session_split (its defaults: min_length 2), from its steps
    test_days = float(test_days)
    if not test_days > 0:
        raise ValueError(f"test_days must be positive, got {test_days}")
    dropped = DropReport()
    train, test, _ = split_by_end_time(drop_short_sessions(sessions, 2, dropped), test_days, 2,
                                       dropped, "test")
    data = Dataset(name=name, sessions=sessions, parts={"train": train, "test": test},
                   source=f"recforge.data.synthetic.generate_sessions(seed={seed})")
    for reason, count in dropped.counts.items():
        data.drops.add(reason, count)
    return data


GENERATORS = {
    "synthetic": generate_ratings,
    "synthetic-implicit": generate_implicit,
    "synthetic-sessions": generate_sessions,
}


def load_synthetic(name: str = "synthetic", **sizes) -> Dataset:
    """Generate the synthetic dataset called ``name`` with the given sizes and seed.

    ``"synthetic"`` -> :func:`generate_ratings`, ``"synthetic-implicit"`` ->
    :func:`generate_implicit`, ``"synthetic-sessions"`` -> :func:`generate_sessions`; keyword
    arguments go to the generator (``seed``, ``n_users``, ...).
    """
    try:
        gen = GENERATORS[name]
    except KeyError:
        raise KeyError(f"unknown synthetic dataset {name!r}; known: {', '.join(GENERATORS)}") from None
    return gen(**sizes)
