"""Service settings: paths, request limits, business rules and write tokens.

Settings come from the ``recforge serve`` flags and an optional TOML file (``--config``)::

    [limits]
    max_k = 100               # largest list a request may ask for
    max_history = 1000        # items in an anonymous history, exclude or candidates list
    max_batch = 1000          # events in one POST /events
    max_body_bytes = 1048576  # request body size
    max_user_events = 1000    # latest stored events of a user merged into its history

    [rules]
    stoplist_items = ["13", "42"]      # never recommended
    stoplist_keywords = ["adult"]      # nor any item whose title contains one (any case)
    min_interactions = 0               # nor items with fewer training interactions
    max_popularity_percent = 0.0       # nor the most popular X % of items (outliers)
    cold_start = "popularity"          # unknown user, no history: "popularity" | "recent"
    cold_start_half_life = 2592000.0   # "recent": seconds for a training interaction to halve

    [exploration]             # a share of the slots for new or under-exposed items
    epsilon = 0.0             # probability that a slot is exploratory
    method = "uniform"        # uniform | thompson (Beta over stored clicks / impressions)
    min_impressions = 100     # items shown fewer times are under-exposed
    max_pool = 1000           # exploration candidates kept (the least shown first)
    log = false               # log every shown list (always when epsilon > 0)
    seed = -1                 # random seed (-1: fresh randomness)

    [updates]                 # INCREMENTAL models absorb stored events (partial_fit)
    interval_s = 0.0          # seconds between updates (0: never)
    min_events = 1            # new events needed for an update

    [ann]                     # nearest-neighbour index per model version (see serving/ann.py)
    index = "auto"            # auto | exact | hnsw | ivf; auto: exact below threshold, else hnsw
    threshold = 50000         # catalogue size from which auto builds an HNSW index
    target_recall = 0.95      # recall@10 that efSearch / nprobe are sized for
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .ann import AnnSettings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class ConfigError(ValueError):
    """A settings file or value that cannot be used; the message names the file and key."""


@dataclass
class Limits:
    max_k: int = 100
    max_history: int = 1000
    max_batch: int = 1000
    max_body_bytes: int = 1 << 20
    max_user_events: int = 1000


@dataclass
class Rules:
    """Business rules applied to every list (see :mod:`recforge.serving.rules`)."""

    stoplist_items: list[str] = field(default_factory=list)
    stoplist_keywords: list[str] = field(default_factory=list)
    min_interactions: int = 0
    max_popularity_percent: float = 0.0
    cold_start: str = "popularity"
    cold_start_half_life: float = 30 * 86400.0


@dataclass
class Exploration:
    """Slots given to new or under-exposed items, and the log of shown lists."""

    epsilon: float = 0.0
    method: str = "uniform"
    min_impressions: int = 100
    max_pool: int = 1000
    log: bool = False
    seed: int = -1
    thompson_draws: int = 200  # Monte Carlo draws estimating a Thompson slot's propensity

    @property
    def logging(self) -> bool:
        return self.log or self.epsilon > 0


@dataclass
class Updates:
    """Background ``partial_fit`` of INCREMENTAL models on the stored events."""

    interval_s: float = 0.0
    min_events: int = 1
    max_events: int = 100000  # events absorbed by one update at most


#: What each key of these sections must be: (type(s), check, description).
_CHECKS = {
    ("rules", "min_interactions"): (int, lambda v: v >= 0, "a non-negative integer"),
    ("rules", "max_popularity_percent"): ((int, float), lambda v: 0 <= v < 100,
                                          "a number in [0, 100)"),
    ("rules", "cold_start"): (str, lambda v: v in ("popularity", "recent"),
                              '"popularity" or "recent"'),
    ("rules", "cold_start_half_life"): ((int, float), lambda v: v > 0, "a positive number"),
    ("exploration", "epsilon"): ((int, float), lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    ("exploration", "method"): (str, lambda v: v in ("uniform", "thompson"),
                                '"uniform" or "thompson"'),
    ("exploration", "min_impressions"): (int, lambda v: v >= 0, "a non-negative integer"),
    ("exploration", "max_pool"): (int, lambda v: v >= 1, "a positive integer"),
    ("exploration", "log"): (bool, lambda v: True, "true or false"),
    ("exploration", "seed"): (int, lambda v: v >= -1, "an integer (-1: random)"),
    ("exploration", "thompson_draws"): (int, lambda v: v >= 1, "a positive integer"),
    ("updates", "interval_s"): ((int, float), lambda v: v >= 0, "a non-negative number"),
    ("updates", "min_events"): (int, lambda v: v >= 1, "a positive integer"),
    ("updates", "max_events"): (int, lambda v: v >= 1, "a positive integer"),
}


def _checked(path, section: str, key: str, value):
    types, ok, what = _CHECKS[(section, key)]
    is_bool = isinstance(value, bool)
    if (is_bool and types is not bool) or not isinstance(value, types) or not ok(value):
        raise ConfigError(f"{path}: [{section}] {key} must be {what}, got {value!r}")
    return value


@dataclass
class Settings:
    """Everything the app needs to start; JSON-serialisable so worker processes get a copy."""

    models_root: str
    store: str
    model_dir: str | None = None  # registered and promoted at start when given
    token_file: str | None = None
    limits: Limits = field(default_factory=Limits)
    rules: Rules = field(default_factory=Rules)
    refresh_seconds: float = 1.0  # how often a worker checks the store for another live version
    session_cache: int = 10000  # in-process session states kept (least recently used dropped)
    ann: AnnSettings = field(default_factory=AnnSettings)  # default index of a model version
    exploration: Exploration = field(default_factory=Exploration)
    updates: Updates = field(default_factory=Updates)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Settings:
        d = json.loads(text)
        d["limits"] = Limits(**d.get("limits", {}))
        d["rules"] = Rules(**d.get("rules", {}))
        d["ann"] = AnnSettings(**d.get("ann", {}))
        d["exploration"] = Exploration(**d.get("exploration", {}))
        d["updates"] = Updates(**d.get("updates", {}))
        return cls(**d)


def read_config(path) -> tuple[Limits, Rules]:
    """Limits and rules from a TOML file (see the module docstring; :func:`read_sections`
    reads ``[exploration]`` and ``[updates]``)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            conf = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    for key in conf:
        if key not in ("limits", "rules", "ann", "exploration", "updates"):
            raise ConfigError(f"{path}: unknown section [{key}] (known: limits, rules, ann, "
                              "exploration, updates)")
    limits = Limits()
    for key, value in conf.get("limits", {}).items():
        if key not in Limits.__dataclass_fields__:
            raise ConfigError(f"{path}: unknown key {key!r} in [limits] (known: "
                              f"{', '.join(Limits.__dataclass_fields__)})")
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{path}: [limits] {key} must be a positive integer, got {value!r}")
        setattr(limits, key, value)
    rules = Rules()
    for key, value in conf.get("rules", {}).items():
        if key not in Rules.__dataclass_fields__:
            raise ConfigError(f"{path}: unknown key {key!r} in [rules] (known: "
                              f"{', '.join(Rules.__dataclass_fields__)})")
        if ("rules", key) in _CHECKS:
            setattr(rules, key, _checked(path, "rules", key, value))
            continue
        if not isinstance(value, list) or not all(isinstance(v, (str, int)) for v in value):
            raise ConfigError(f"{path}: [rules] {key} must be a list of strings")
        setattr(rules, key, [str(v) for v in value])
    return limits, rules


def read_sections(path) -> tuple[Exploration, Updates]:
    """The ``[exploration]`` and ``[updates]`` sections of a TOML config file (defaults where
    absent); a bad value raises :class:`ConfigError` naming the file, section and key."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            conf = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    out = []
    for section, cls in (("exploration", Exploration), ("updates", Updates)):
        obj = cls()
        for key, value in conf.get(section, {}).items():
            if key not in cls.__dataclass_fields__:
                raise ConfigError(f"{path}: unknown key {key!r} in [{section}] (known: "
                                  f"{', '.join(cls.__dataclass_fields__)})")
            setattr(obj, key, _checked(path, section, key, value))
        out.append(obj)
    return out[0], out[1]


def read_ann(path) -> AnnSettings:
    """The ``[ann]`` section of a TOML config file (defaults where absent)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            conf = tomllib.load(f).get("ann", {})
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    ann = AnnSettings()
    for key, value in conf.items():
        if key not in AnnSettings.__dataclass_fields__:
            raise ConfigError(f"{path}: unknown key {key!r} in [ann] (known: "
                              f"{', '.join(AnnSettings.__dataclass_fields__)})")
        setattr(ann, key, value)
    try:
        return ann.check(f"{path}: [ann]")
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def read_tokens(path) -> list[str]:
    """Bearer tokens from a file: one per line; blank lines and ``#`` comments are skipped."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such token file") from None
    tokens = [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]
    if not tokens:
        raise ConfigError(f"{path}: no token in the file")
    for n, tok in enumerate(tokens, 1):
        if len(tok) < 16 or any(c.isspace() for c in tok):
            raise ConfigError(f"{path}: token {n} must be at least 16 characters without spaces")
    return tokens
