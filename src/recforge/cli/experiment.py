"""The schema of a ``recforge bakeoff`` experiment file (TOML), checked before any work.

Every section is a pydantic model with ``extra="forbid"`` and strict types, so a typo, a wrong
type or a value out of range is reported at once, naming the file, the line, the key path and
(for an unknown key) the closest known one::

    examples/bad.toml, line 14, [run] confidence: must be less than 1 (got 1.5)
    examples/bad.toml, line 3, [dataset] nme: unknown key (did you mean 'name'?)

Protocol parameters and model hyperparameters are checked by the protocol and model
constructors (``make_protocol``, ``Recommender.check_params``), also before the first fit.
"""

from __future__ import annotations

import difflib
import re
import sys
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

FORMATS = ("json", "csv", "html")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class DatasetSection(_Section):
    name: str | None = None
    path: str | None = None
    data_dir: str | None = None
    options: dict = Field(default_factory=dict)


class ProtocolSection(BaseModel):
    # a protocol's own parameters are checked by its constructor (make_protocol)
    model_config = ConfigDict(extra="allow", strict=True)
    type: str


class ModelSection(_Section):
    name: str
    label: str | None = None
    params: dict = Field(default_factory=dict)


class OutputSection(_Section):
    dir: str | None = None
    formats: list[Literal["json", "csv", "html"]] = Field(default_factory=lambda: list(FORMATS))


class RunSection(_Section):
    seed: int = Field(0, ge=0)
    sample_user: int | str | None = None
    sample_k: int = Field(10, ge=1)
    progress: bool = True
    memory: bool = False
    confidence: float = Field(0.95, gt=0.0, lt=1.0)
    n_resamples: int = Field(1000, ge=1)
    threads: int | None = Field(None, ge=1)
    allow_degenerate: bool = False


class Experiment(_Section):
    dataset: DatasetSection = Field(default_factory=DatasetSection)
    protocols: list[ProtocolSection] = Field(default_factory=list)
    models: list[ModelSection] = Field(default_factory=list)
    output: OutputSection = Field(default_factory=OutputSection)
    run: RunSection = Field(default_factory=RunSection)


_ARRAY_TABLES = ("protocols", "models")


def _known_keys(loc: tuple) -> list[str]:
    """The keys allowed where ``loc`` (a pydantic error location) points."""
    model: type[BaseModel] = Experiment
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return []
        ann = field.annotation
        inner = getattr(ann, "__args__", None)
        cls = inner[0] if inner else ann
        if isinstance(cls, type) and issubclass(cls, BaseModel):
            model = cls
        else:
            return []
    return list(model.model_fields)


def _where(loc: tuple) -> str:
    """``('run', 'confidence')`` -> ``[run] confidence``; ``('models', 1, 'nme')`` ->
    ``[[models]] #2 nme``."""
    if not loc:
        return "top level"
    if len(loc) == 1 and loc[0] not in Experiment.model_fields:
        return "top level"
    head, rest = loc[0], list(loc[1:])
    if head in _ARRAY_TABLES and rest and isinstance(rest[0], int):
        text = f"[[{head}]] #{rest.pop(0) + 1}"
    elif rest or head in Experiment.model_fields:
        text = f"[{head}]" if rest else str(head)
    else:
        text = str(head)
    if rest:
        text += " " + ".".join(str(r) for r in rest)
    return text


def _line_of(lines: list[str], loc: tuple) -> int | None:
    """The 1-based line of the key ``loc`` points at (best effort; TOML parsers give none)."""
    if not loc:
        return None
    head, rest = loc[0], list(loc[1:])
    start = 0
    if head in _ARRAY_TABLES and rest and isinstance(rest[0], int):
        n = rest.pop(0)
        hits = [j for j, ln in enumerate(lines) if re.match(rf"\s*\[\[\s*{head}\s*\]\]", ln)]
        if n >= len(hits):
            return None
        start = hits[n]
    elif rest:
        hits = [j for j, ln in enumerate(lines) if re.match(rf"\s*\[\s*{re.escape(str(head))}\s*\]", ln)]
        if not hits:
            return None
        start = hits[0]
    else:
        rest = [head]
    key = str(rest[0]) if rest else None
    if key is None:
        return start + 1
    for j in range(start, len(lines)):
        if j > start and re.match(r"\s*\[", lines[j]):
            break
        if re.match(rf"\s*{re.escape(key)}\s*=", lines[j]) or re.search(rf"[{{,]\s*{re.escape(key)}\s*=", lines[j]):
            return j + 1
    return start + 1


def _message(err: dict) -> str:
    kind = err["type"]
    value = err.get("input")
    if kind == "extra_forbidden":
        name = str(err["loc"][-1])
        keys = _known_keys(err["loc"])
        close = difflib.get_close_matches(name, keys, n=1, cutoff=0.5)
        if len(err["loc"]) == 1:
            return (f"unknown section [{name}]" + (f" (did you mean [{close[0]}]?)" if close
                                                   else f" (known: {', '.join(keys)})"))
        return f"unknown key {name!r}" + (f" (did you mean {close[0]!r}?)" if close
                                          else f" (known: {', '.join(keys)})")
    if kind == "missing":
        return "missing (required)"
    msg = err["msg"]
    msg = msg[0].lower() + msg[1:] if msg else msg
    return msg.replace("input should be", "must be") + f" (got {value!r})"


def format_errors(path: Path, text: str, exc: ValidationError) -> str:
    """One line per problem: ``file, line N, [section] key: what is wrong``."""
    lines = text.splitlines()
    out = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        line = _line_of(lines, loc)
        at = f"{path}" + (f", line {line}" if line else "")
        out.append(f"{at}, {_where(loc)}: {_message(err)}")
    return "\n".join(out)


class ExperimentError(ValueError):
    """An experiment file that cannot be used (the message names file, line and key)."""


def load_experiment(path) -> dict:
    """Read and check an experiment file; returns it as a plain dict (paths resolved against
    the file's folder, ``_source`` = the file). Raises :class:`ExperimentError`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ExperimentError(f"experiment file {path} not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ExperimentError(f"experiment file {path}: cannot read it ({e})") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ExperimentError(f"{path}: invalid TOML: {e}") from None
    for section in _ARRAY_TABLES:
        if section in raw and not isinstance(raw[section], list):
            line = _line_of(text.splitlines(), (section, "x"))
            raise ExperimentError(f"{path}" + (f", line {line}" if line else "")
                                  + f", [{section}]: use [[{section}]] tables (one per entry)")
    try:
        exp = Experiment.model_validate(raw)
    except ValidationError as e:
        raise ExperimentError(format_errors(path, text, e)) from None
    conf = exp.model_dump(exclude_unset=True)
    # keep the sections that were given, as plain dicts (protocol extras included)
    conf["protocols"] = [p.model_dump() for p in exp.protocols] if "protocols" in raw else []
    base = path.resolve().parent
    ds = conf.get("dataset", {})
    for key in ("path", "data_dir"):
        if ds.get(key) is not None:
            ds[key] = str((base / ds[key]).resolve())
    if conf.get("output", {}).get("dir") is not None:
        conf["output"]["dir"] = str((base / conf["output"]["dir"]).resolve())
    conf["_source"] = str(path)
    conf["_text"] = text
    return conf


def line_of(conf: dict, loc: tuple) -> str:
    """``"file, line N"`` for a key of a loaded experiment (for later errors)."""
    src = conf.get("_source")
    if not src:
        return ""
    line = _line_of(conf.get("_text", "").splitlines(), loc)
    return f"{src}" + (f", line {line}" if line else "") + ", "
