"""Request bodies, validated with pydantic: a bad field is a 422 naming that field."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)


def _path(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain a NUL character")
    return value


#: A raw id as JSON gives it: text (at most 256 characters) or an integer.
Id = Annotated[str, StringConstraints(min_length=1, max_length=256)] | int
Finite = Annotated[float, Field(allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EventIn(_Strict):
    """One interaction: a user's and/or a session's item."""

    user: Id | None = None
    session: Id | None = None
    item: Id
    value: Finite = 1.0
    timestamp: Finite | None = Field(None, description="unix seconds; default: the server's time")

    @model_validator(mode="after")
    def _owner(self):
        if self.user is None and self.session is None:
            raise ValueError("an event needs a user, a session, or both")
        return self


class EventsIn(_Strict):
    events: list[EventIn] = Field(min_length=1)


class QueryIn(_Strict):
    """An anonymous query: what someone did (item ids, or ``{item: value}``) and the filters."""

    history: list[Id] | dict[Annotated[str, StringConstraints(max_length=256)], Finite] = \
        Field(default_factory=list)
    k: int = Field(10, ge=1)
    exclude: list[Id] | None = None
    candidates: list[Id] | None = None
    exclude_seen: bool = True


class ClickIn(_Strict):
    """A click in a session; the answer is the session's next items."""

    item: Id
    value: Finite = 1.0
    timestamp: Finite | None = None
    user: Id | None = None
    k: int = Field(10, ge=1)
    exclude: list[Id] | None = None
    candidates: list[Id] | None = None
    exclude_seen: bool = False


class RegisterIn(_Strict):
    """A saved model directory, relative to the models root (or absolute inside it)."""

    path: Annotated[str, StringConstraints(min_length=1, max_length=1024),
                    AfterValidator(_path)]
    promote: bool = False
    index: Literal["auto", "exact", "hnsw", "ivf"] | None = Field(
        None, description="retrieval index of the version (default: the service's [ann] index): "
                          "exact (faiss flat), hnsw, ivf, or auto (exact scoring below the "
                          "size threshold, hnsw above)")


class OnboardingIn(_Strict):
    """A few items picked by someone without history; with ``user`` they become that user's
    stored events (their history from now on)."""

    items: list[Id] = Field(min_length=1)
    user: Id | None = None
    k: int = Field(10, ge=1)
