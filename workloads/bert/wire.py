"""The /predict wire formats: JSON (the default) and MessagePack, decoded and validated in one place.

A request body is ``{"pairs": [{"text_a": "...", "text_b": "..."}, ...]}`` in either format:
``Content-Type: application/json`` (or none) or ``application/msgpack`` (``application/x-msgpack``
too). The answer comes back in the format the client asks for in ``Accept`` (MessagePack when it
names it, else JSON). MessagePack is the cheap one: no text escaping, no float printing and
parsing, and a client that already batches can send many pairs without the JSON tax on either end.

Bodies are parsed straight into the pydantic model by pydantic-core (``model_validate_json`` /
``model_validate``), not through FastAPI's request-body machinery, and answers are encoded by
pydantic-core's ``to_json`` or msgpack: on one CPU core that keeps the per-request work of the
event loop small next to the model's. A bad body is a :class:`BadRequest` with one reason per
problem (the field path, what is wrong, what to send).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import to_json

JSON = "application/json"
MSGPACK = "application/msgpack"
_MSGPACK_TYPES = (MSGPACK, "application/x-msgpack")
SHAPE = '{"pairs": [{"text_a": ..., "text_b": ...}]}'


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("is empty or only whitespace; send the sentence text")
    return value


Text = Annotated[str, Field(max_length=100_000), AfterValidator(_not_blank)]


class PairIn(BaseModel):
    """One sentence pair."""

    model_config = ConfigDict(extra="forbid")
    text_a: Text
    text_b: Text


class PredictRequest(BaseModel):
    """The body of POST /predict."""

    model_config = ConfigDict(extra="forbid")
    pairs: list[PairIn] = Field(min_length=1)


class BadRequest(ValueError):
    """A body that is not a valid predict request; ``reasons`` says what is wrong, one line each."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


class UnsupportedMediaType(ValueError):
    """A Content-Type the server does not read."""


def reason(error: dict[str, Any] | Any) -> str:
    """Return one pydantic error as ``<field path> <what is wrong>``."""
    where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    if error.get("type") == "missing":
        message = "is missing"
    elif error.get("type") == "json_invalid":
        message = f"is not valid JSON ({error.get('ctx', {}).get('error', 'parse error')})"
    elif error.get("type") == "extra_forbidden":
        message = f"is not a known field (send {SHAPE})"
    return f"{where} {message}"


def _media(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


def is_msgpack(content_type: str | None) -> bool:
    """Return True when a Content-Type or Accept value names MessagePack."""
    header = (content_type or "").lower()
    return any(t in header for t in _MSGPACK_TYPES)


def _msgpack() -> Any:
    """Return the msgpack module (the image pins msgpack==1.2.4; without it only JSON is spoken)."""
    try:
        import msgpack
    except ImportError as err:
        raise UnsupportedMediaType(
            f"{MSGPACK} needs the msgpack package (msgpack==1.2.4), which this server lacks; send {JSON}"
        ) from err
    return msgpack


def decode(body: bytes, content_type: str | None) -> PredictRequest:
    """Parse and validate a request body in the format its Content-Type names (JSON when none)."""
    media = _media(content_type)
    try:
        if media in _MSGPACK_TYPES:
            msgpack = _msgpack()
            try:
                obj = msgpack.unpackb(body, raw=False)
            except (ValueError, msgpack.UnpackException) as err:
                raise BadRequest([f"body is not valid MessagePack ({err}); send {SHAPE}"]) from err
            return PredictRequest.model_validate(obj)
        if media in ("", JSON) or media.endswith("+json"):
            return PredictRequest.model_validate_json(body)
    except ValidationError as err:
        raise BadRequest([reason(e) for e in err.errors()]) from err
    raise UnsupportedMediaType(f"Content-Type {media!r} is not read here; send {JSON} or {MSGPACK}")


def encode(doc: Any, accept: str | None) -> tuple[bytes, str]:
    """Return (body, media type) of an answer: MessagePack when ``accept`` asks for it, else JSON."""
    if is_msgpack(accept):
        try:
            return _msgpack().packb(doc, use_bin_type=True), MSGPACK
        except UnsupportedMediaType:
            pass  # the client also reads JSON (every client of this API does)
    return to_json(doc), JSON
