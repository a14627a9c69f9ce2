"""Read a YAML config file into a :class:`~mlhpc.config.model.Config`, reporting every problem at once."""

from __future__ import annotations

import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from mlhpc.config import safe_yaml
from mlhpc.config.issues import (
    ConfigError,
    ConfigIssue,
    Level,
    did_you_mean,
    format_path,
    format_value,
    path_part,
)
from mlhpc.config.model import Config
from mlhpc.config.rules import check_rules
from mlhpc.errors import shorten

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = REPO_ROOT / "config" / "default.yaml"
CONFIG_ENV = "MLHPC_CONFIG"


def resolve_config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Pick the config file: an explicit path, else $MLHPC_CONFIG, else config/default.yaml."""
    chosen = explicit or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG
    return Path(chosen)


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Load, validate and return the config; raise ConfigError listing every error found."""
    config, _warnings = load_config_with_warnings(path)
    return config


def load_config_with_warnings(path: str | os.PathLike[str] | None = None) -> tuple[Config, list[ConfigIssue]]:
    """Load the config and also return the warnings and infos that do not stop synthesis."""
    file = resolve_config_path(path)
    source = str(file)
    text = _read_file(file, source)
    return parse_config(text, source=source)


def _file_issue(message: str, fix: str, source: str, *, line: int | None = None) -> ConfigError:
    return ConfigError(
        [ConfigIssue(path="", code="FILE", message=message, value=source, fix=fix, line=line)], source=source
    )


def _read_file(file: Path, source: str) -> str:
    """Return the text of a config file, or raise ConfigError: missing, not a file, unreadable, too big, not UTF-8."""
    if file.is_dir():
        raise _file_issue(
            "the config path is a directory, not a file",
            "pass a YAML file, e.g. config/default.yaml or one of config/examples/*.yaml",
            source,
        )
    if file.exists() and not file.is_file():
        raise _file_issue(
            "the config path is not a regular file (a device, a pipe or a socket)",
            "pass a YAML file, e.g. config/default.yaml or one of config/examples/*.yaml",
            source,
        )
    if not file.is_file():
        hint = "" if not file.suffix else " (paths are relative to the directory you run from)"
        raise _file_issue(
            f"config file not found{hint}",
            "pass an existing file, e.g. config/default.yaml or one of config/examples/*.yaml",
            source,
        )
    try:
        size = file.stat().st_size
        if size > safe_yaml.MAX_CONFIG_BYTES:
            err = safe_yaml.too_large(size)
            raise ConfigError(
                [ConfigIssue(path="", code="FILE", message=err.problem, fix=err.fix)], source=source
            )
        with file.open("rb") as handle:
            raw = handle.read(safe_yaml.MAX_CONFIG_BYTES + 1)  # never more: a FIFO or /dev/zero has no end
    except OSError as err:
        raise _file_issue(
            f"cannot read the config file: {err.strerror or err}",
            "check the file's permissions (it must be readable by you), or pass another file",
            source,
        ) from None
    try:
        return safe_yaml.decode(raw)
    except safe_yaml.YamlRefused as err:
        raise ConfigError(
            [ConfigIssue(path="", code="FILE", message=err.problem, fix=err.fix, line=err.line)],
            source=source,
        ) from None


def parse_config(text: str, *, source: str = "<string>") -> tuple[Config, list[ConfigIssue]]:
    """Validate YAML text; return the config and its non-blocking issues, or raise ConfigError."""
    data, lines, issues = _read_yaml(text)
    if issues:
        raise ConfigError(issues, source=source)
    try:
        config = Config.model_validate(data)
    except ValidationError as err:
        issues = [_issue_from_pydantic(e, data, lines) for e in err.errors(include_url=False)]
        issues.sort(key=lambda i: (i.line or 0, i.path))
        raise ConfigError(issues, source=source) from None
    found = [
        ConfigIssue(
            path=i.path,
            message=i.message,
            fix=i.fix,
            value=i.value,
            code=i.code,
            level=i.level,
            line=i.line or lines.get(i.path),
        )
        for i in check_rules(config)
    ]
    errors = [i for i in found if i.level is Level.ERROR]
    others = [i for i in found if i.level is not Level.ERROR]
    if errors:
        raise ConfigError(errors, source=source, warnings=others)
    return config, others


# --- YAML ------------------------------------------------------------------------


# What a YAML document that is not a mapping is, in words.
_KINDS = {
    list: "a list",
    str: "a single text",
    int: "a number",
    float: "a number",
    bool: "true/false",
    type(None): "null",
}
# What YAML made of an unquoted key that is not text.
_KEY_KINDS = {
    bool: "a boolean (yes, no, on, off, true and false are)",
    int: "a number",
    float: "a number",
    type(None): "null (~ and null are)",
}
YAML_FIX = "check indentation (spaces, not tabs) and that every 'key: value' pair has a space after ':'"


def _yaml_issue(err: yaml.YAMLError, text: str) -> ConfigIssue:
    """Describe a YAML error (refused by our loader, or not YAML at all) as one issue with its line."""
    if isinstance(err, safe_yaml.YamlRefused):
        return ConfigIssue(
            path="", code="YAML", line=err.line, message=err.problem, fix=err.fix, value=err.value
        )
    if isinstance(err, yaml.reader.ReaderError):
        # A character YAML never allows (NUL, other control characters); the reader knows only its offset.
        line = text.count("\n", 0, err.position) + 1
        return ConfigIssue(
            path="",
            code="YAML",
            line=line,
            message=f"character #x{err.character:04x} (a control character) is not allowed in YAML"
            if isinstance(err.character, int)
            else f"character {err.character!r} is not allowed in YAML",
            fix="remove it: a config holds printable text",
        )
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err)
    context = getattr(err, "context", None)
    if context:  # "expected a single document in the stream" + "but found another document"
        problem = f"{context}, {problem}"
    return ConfigIssue(
        path="",
        code="YAML",
        line=mark.line + 1 if mark is not None else None,
        message=f"not valid YAML: {shorten(problem)}",
        fix=YAML_FIX,
    )


def _read_yaml(text: str) -> tuple[Any, dict[str, int], list[ConfigIssue]]:
    """Parse YAML; return (data, {path: line}, issues) with duplicate keys reported as issues."""
    try:
        data, node = safe_yaml.load(text)
    except yaml.YAMLError as err:
        return None, {}, [_yaml_issue(err, text)]
    if node is None:
        return {}, {}, []
    lines: dict[str, int] = {}
    issues: list[ConfigIssue] = []
    _walk(node, "", lines, issues)
    if not isinstance(data, dict):
        issues.append(
            ConfigIssue(
                path="",
                code="YAML",
                line=1,
                message="the file must be a mapping of sections (project, network, ...), not "
                + _KINDS.get(type(data), f"a {type(data).__name__}"),
                value=data,
                fix="start the file with a section such as 'project:' or 'network:'",
            )
        )
    return data, lines, issues


def _walk(node: yaml.Node, path: str, lines: dict[str, int], issues: list[ConfigIssue]) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = path_part(key_node.value)
            child = f"{path}.{key}" if path else key
            line = key_node.start_mark.line + 1
            if key in seen:
                issues.append(
                    ConfigIssue(
                        path=child,
                        code="YAML",
                        line=line,
                        message=f"key '{key}' appears twice (first on line {seen[key]}); YAML would silently "
                        "keep only the last one",
                        fix=f"remove one of the two '{key}' entries",
                    )
                )
            seen[key] = line
            lines[child] = line
            _walk(value_node, child, lines, issues)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = f"{path}[{index}]"
            lines[child] = item.start_mark.line + 1
            _walk(item, child, lines, issues)


# --- pydantic errors into issues -----------------------------------------------------


def _issue_from_pydantic(error: ErrorDetails, data: Any, lines: Mapping[str, int]) -> ConfigIssue:
    loc = tuple(error["loc"])
    path = format_path(loc)
    kind = error["type"]
    ctx = error.get("ctx") or {}
    given = error.get("input")
    line = lines.get(path)
    if kind == "invalid_key":  # `1:`, `yes:` or `~:` as a key: YAML made it a number, a boolean or null
        parent = format_path(loc[:-1])
        path = f"{parent}.{path_part(given)}" if parent else path_part(given)
        read_as = _KEY_KINDS.get(type(given), f"a {type(given).__name__}")
        return ConfigIssue(
            path=path,
            message=f"the key {format_value(given)} is not text: YAML reads it as {read_as}",
            fix="quote the key if you meant the word or number as a name (e.g. 'yes': ...); keys here are "
            + (", ".join(sorted(_allowed_keys(loc[:-1]))) or "text"),
            line=lines.get(parent) if parent else None,
        )
    message, fix = _describe(kind, loc, ctx, given, error["msg"])
    value = None if kind in ("missing",) or isinstance(given, dict) else given
    if kind == "extra_forbidden":
        value = None
    return ConfigIssue(path=path, message=message, fix=fix, value=value, line=line)


def _describe(
    kind: str, loc: tuple[Any, ...], ctx: Mapping[str, Any], given: Any, msg: str
) -> tuple[str, str]:
    """Return (message, fix) for one pydantic error type."""
    field_name = path_part(loc[-1]) if loc else "value"
    if kind == "extra_forbidden":
        allowed = sorted(_allowed_keys(loc[:-1]))
        guess = did_you_mean(field_name, allowed)
        message = f"unknown key '{field_name}'" + (f" (did you mean '{guess}'?)" if guess else "")
        fix = (
            f"rename it to '{guess}'" if guess else "remove it"
        ) + f"; allowed keys here: {', '.join(allowed)}"
        return message, fix
    if kind == "missing":
        return f"required key '{field_name}' is missing", f"add '{field_name}:' to this section"
    if kind in ("literal_error", "enum"):
        expected = str(ctx.get("expected", ""))
        options = [o.strip().strip("'") for o in expected.replace(" or ", ", ").split(",") if o.strip()]
        guess = did_you_mean(given, options) if isinstance(given, str) else None
        message = f"{format_value(given)} is not one of the allowed values: {', '.join(options)}"
        fix = f"use '{guess}'" if guess else f"use one of: {', '.join(options)}"
        return message, fix
    bounds = {
        "greater_than_equal": (">=", "ge"),
        "greater_than": (">", "gt"),
        "less_than_equal": ("<=", "le"),
        "less_than": ("<", "lt"),
    }
    if kind in bounds:
        symbol, key = bounds[kind]
        limit = ctx.get(key)
        other = _other_bound(loc, key)
        limits = f"{symbol} {limit}" + (f" and {other}" if other else "")
        return f"{field_name} must be {limits}", f"set {field_name} to a value {limits}"
    if kind == "string_pattern_mismatch":
        description = _field_description(loc) or f"text matching {ctx.get('pattern')}"
        return (
            f"{format_value(given)} is not allowed for {field_name}",
            f"use {description[0].lower()}{description[1:]}",
        )
    if kind in ("string_too_long", "string_too_short", "too_long", "too_short"):
        return msg[0].lower() + msg[1:], "shorten or lengthen the value to fit"
    types_ = {
        "int_parsing": "a whole number",
        "int_type": "a whole number",
        "int_from_float": "a whole number",
        "float_parsing": "a number",
        "float_type": "a number",
        "finite_number": "a finite number",
        "bool_parsing": "true or false",
        "bool_type": "true or false",
        "string_type": "text",
        "model_type": "a mapping of keys (key: value lines, indented)",
        "model_attributes_type": "a mapping of keys (key: value lines, indented)",
        "dict_type": "a mapping of keys (key: value lines, indented)",
        "tuple_type": "a list (one '- item' per line, or [a, b])",
        "list_type": "a list (one '- item' per line, or [a, b])",
    }
    if kind in types_:
        wanted = types_[kind]
        return f"{field_name} must be {wanted}", f"write {field_name} as {wanted}"
    if kind == "value_error":
        text = msg.removeprefix("Value error, ")
        head, _, tail = text.partition("; ")
        return head, tail or "correct the value"
    return msg, "correct the value"


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """Walk the Config model along a location; return the model there, if the location is a model."""
    model: type[BaseModel] | None = Config
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        info = model.model_fields.get(str(part))
        if info is None:
            return None
        model = _find_model(info.annotation)
    return model


def _find_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, tuple, list, typing.Annotated) or origin is not None:
        for arg in typing.get_args(annotation):
            found = _find_model(arg)
            if found is not None:
                return found
    return None


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    model = _model_at(loc)
    return list(model.model_fields) if model else []


def _field_description(loc: tuple[Any, ...]) -> str | None:
    model = _model_at(loc[:-1])
    if model is None or isinstance(loc[-1], int):
        return None
    info = model.model_fields.get(str(loc[-1]))
    return info.description if info else None


def _other_bound(loc: tuple[Any, ...], key: str) -> str | None:
    model = _model_at(loc[:-1])
    if model is None or not loc or isinstance(loc[-1], int):
        return None
    info = model.model_fields.get(str(loc[-1]))
    if info is None:
        return None
    pairs = {"ge": ("le", "<="), "gt": ("le", "<="), "le": ("ge", ">="), "lt": ("ge", ">=")}
    other_key, symbol = pairs[key]
    for meta in info.metadata:
        bound = getattr(meta, other_key, None)
        if bound is not None:
            return f"{symbol} {bound}"
    return None
