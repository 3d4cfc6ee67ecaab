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
    stoplist_items: list[str] = field(default_factory=list)
    stoplist_keywords: list[str] = field(default_factory=list)


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

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Settings:
        d = json.loads(text)
        d["limits"] = Limits(**d.get("limits", {}))
        d["rules"] = Rules(**d.get("rules", {}))
        d["ann"] = AnnSettings(**d.get("ann", {}))
        return cls(**d)


def read_config(path) -> tuple[Limits, Rules]:
    """Limits and rules from a TOML file (see the module docstring)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            conf = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    for key in conf:
        if key not in ("limits", "rules", "ann"):
            raise ConfigError(f"{path}: unknown section [{key}] (known: limits, rules, ann)")
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
        if not isinstance(value, list) or not all(isinstance(v, (str, int)) for v in value):
            raise ConfigError(f"{path}: [rules] {key} must be a list of strings")
        setattr(rules, key, [str(v) for v in value])
    return limits, rules


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
