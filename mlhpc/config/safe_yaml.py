"""The one way a config file becomes Python data: UTF-8 only, core tags only, bounded in every dimension.

A config is a small tree of mappings, lists, text, numbers and booleans. Anything else a YAML
file can say is refused here, with the line and a fix, before it can cost memory or run code:

* bytes that are not UTF-8 (reported with their offset, line and column) and files over
  :data:`MAX_CONFIG_BYTES`;
* explicit tags other than the core ones (``!!python/object``, ``!!binary``, ``!local``, ...):
  :class:`yaml.SafeLoader` already refuses to build Python objects, but says so in a traceback;
* an alias inside its own anchor (a cycle: ``a: &a [*a]``), which would make every later walk
  of the tree recurse forever;
* alias expansion past :data:`MAX_NODES` nodes or nesting past :data:`MAX_DEPTH` levels. Nine
  anchors of nine aliases each are a few hundred bytes and 387 million nodes once expanded
  ("billion laughs"); PyYAML shares the nodes, but every consumer after it (line numbers, pydantic,
  error messages) walks them as a tree. Sizes are counted while composing, where aliases are
  resolved, so a bomb is refused after composing its few hundred distinct nodes.
"""

from __future__ import annotations

from typing import Any

import yaml

from mlhpc.errors import echo, shorten

MAX_CONFIG_BYTES = 1024 * 1024  # default.yaml is ~3 KiB; a megabyte of config is a mistake
MAX_NODES = 100_000  # nodes after expanding aliases (keys, values and items each count one)
MAX_DEPTH = 64  # nested mappings and lists; the config model is 5 deep, Python's recursion limit 1,000

CORE_PREFIX = "tag:yaml.org,2002:"
# The YAML core schema: what a plain `key: value` file resolves to. `!` is the non-specific tag
# (`! 12` is the text "12").
CORE_TAGS = frozenset(CORE_PREFIX + t for t in ("str", "int", "float", "bool", "null", "seq", "map")) | {"!"}

PLAIN_VALUES = "plain values: text, numbers, true/false, null, lists and mappings"


class YamlRefused(yaml.YAMLError):
    """A config file refused before or while reading it: the problem, where, the fix."""

    def __init__(
        self, problem: str, *, fix: str, line: int | None = None, column: int | None = None, value: Any = None
    ) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix
        self.line = line
        self.column = column
        self.value = value

    @classmethod
    def at(cls, mark: Any, problem: str, *, fix: str, value: Any = None) -> YamlRefused:
        """Build one at a YAML mark (a yaml.Mark, or None; 1-based line and column)."""
        if mark is None:
            return cls(problem, fix=fix, value=value)
        return cls(problem, fix=fix, line=mark.line + 1, column=mark.column + 1, value=value)


def show_tag(tag: str) -> str:
    """Return a tag as it is written in a file (`!!python/object`, not `tag:yaml.org,2002:python/object`)."""
    return shorten("!!" + tag.removeprefix(CORE_PREFIX) if tag.startswith(CORE_PREFIX) else tag, 80)


def decode(raw: bytes) -> str:
    """Return the text of a config file's bytes; refuse a file too large or not UTF-8 (a BOM is dropped)."""
    if len(raw) > MAX_CONFIG_BYTES:
        raise too_large()  # the reader stops one byte past the limit, so the true size is unknown here
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise YamlRefused(
            "the file is UTF-16 (it starts with a UTF-16 byte-order mark), not UTF-8",
            fix="save it as UTF-8 (e.g. `iconv -f utf-16 -t utf-8 FILE > FILE.new`)",
            line=1,
            column=1,
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        start = err.start
        line_start = raw.rfind(b"\n", 0, start) + 1
        line = raw.count(b"\n", 0, start) + 1
        column = start - line_start + 1
        bad = raw[start : max(err.end, start + 1)][:4].hex(" ")
        raise YamlRefused(
            f"the file is not UTF-8: byte {bad} at offset {start} (line {line}, column {column}) "
            f"{err.reason}",
            fix="save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8 FILE > FILE.new` for a Latin-1 file)",
            line=line,
            column=column,
        ) from None


def too_large(size: int | None = None) -> YamlRefused:
    """Return the refusal of a config over the limit (`size`: its bytes, when known)."""
    what = f"{size:,} bytes" if size is not None else f"more than {MAX_CONFIG_BYTES:,} bytes"
    return YamlRefused(
        f"the file is {what}; a config may be at most {MAX_CONFIG_BYTES:,} bytes (1 MiB)",
        fix="check that this is the config you meant (config/default.yaml is a few KiB)",
    )


class ConfigYamlLoader(yaml.SafeLoader):
    """A SafeLoader that refuses non-core tags, alias cycles and expansion past the limits."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._open_anchors: list[str] = []  # anchors whose value is being composed
        self._sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded nodes, expanded depth)
        self._keep: list[yaml.Node] = []  # keep measured nodes alive so their ids stay unique
        self._aliased = False  # whether an alias was seen (it explains a count far beyond the text)

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        """Compose one node, refusing foreign tags, cycles and a tree past the limits."""
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) and event.anchor in self._open_anchors:
            name = shorten(event.anchor, 60)
            raise YamlRefused.at(
                event.start_mark,
                f"the alias *{name} is inside its own anchor &{name}: the value would contain itself without end",
                fix=f"point *{name} at an anchor defined before it, or write the value out",
            )
        self._aliased = self._aliased or isinstance(event, yaml.AliasEvent)
        tag = getattr(event, "tag", None)
        if tag is not None and tag not in CORE_TAGS:
            raise YamlRefused.at(
                event.start_mark,
                f"the tag {show_tag(tag)} is not allowed in a config",
                fix=f"remove the tag: a config holds {PLAIN_VALUES}",
            )
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise YamlRefused.at(
                event.start_mark,
                f"values are nested more than {MAX_DEPTH} levels deep",
                fix="a config is a few levels of sections; check brackets and indentation",
            )
        anchor = getattr(event, "anchor", None) if not isinstance(event, yaml.AliasEvent) else None
        if anchor is not None:
            self._open_anchors.append(anchor)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
            if anchor is not None:
                self._open_anchors.pop()
        if node is not None:
            self._measure(node, event)
        return node

    def _measure(self, node: yaml.Node, event: yaml.Event) -> None:
        if id(node) in self._sizes:
            size, depth = self._sizes[id(node)]  # an alias: counted again where it is used
        else:
            if isinstance(node, yaml.MappingNode):
                children = [child for pair in node.value for child in pair]
            elif isinstance(node, yaml.SequenceNode):
                children = list(node.value)
            else:
                children = []
            measured = [self._sizes[id(c)] for c in children]
            size = 1 + sum(s for s, _ in measured)
            depth = 1 + max((d for _, d in measured), default=0)
            self._sizes[id(node)] = (size, depth)
            self._keep.append(node)
        if size > MAX_NODES:
            raise YamlRefused.at(
                event.start_mark,
                f"the file holds more than {MAX_NODES:,} values"
                + (
                    " once its aliases are expanded (each alias repeats its anchor's whole value)"
                    if self._aliased
                    else ""
                ),
                fix="write the values out, or use fewer aliases of large anchors",
            )
        if depth > MAX_DEPTH:
            raise YamlRefused.at(
                event.start_mark,
                f"values are nested more than {MAX_DEPTH} levels deep once aliases are expanded",
                fix="a config is a few levels of sections; use fewer aliases nested in anchors",
            )

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        """Construct one value; a scalar its tag cannot hold (`!!int abc`, `2024-13-45`) is refused, not a crash."""
        try:
            return super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except (ValueError, KeyError, IndexError, TypeError, OverflowError, AttributeError) as err:
            tag = show_tag(node.tag)
            # int() and float() repeat the value in their message; a timestamp's says what is wrong with it.
            detail = f" ({shorten(str(err), 120)})" if node.tag == CORE_PREFIX + "timestamp" else ""
            raise YamlRefused.at(
                node.start_mark,
                f"{echo(node.value)} cannot be read as {tag}{detail}",
                fix=f"quote it to keep it as text, or write a valid {tag.removeprefix('!!')}",
            ) from None


def load(text: str) -> tuple[Any, yaml.Node | None]:
    """Return (data, root node) of one YAML document (None, None when empty); raise YAMLError subclasses."""
    if len(text) > MAX_CONFIG_BYTES:
        raise too_large()
    loader = ConfigYamlLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        return loader.construct_document(node), node
    finally:
        loader.dispose()
