"""The bad-input corpus: user mistakes, each with the words its error must use.

Every case is one `mlhpc ...` command line run from an empty temp directory after its setup
has written the files it needs there. :mod:`tests.badinput.test_corpus` asserts each exits 1,
names the problem (every string in ``expect``), shows no traceback and writes nothing.

The commands are the cheap ones: `mlhpc validate FILE` for configs, and `mlhpc run` that
fails before a job starts (bad `--set`, `--out`, `--checkpoint-dir`) or as the job reads its
checkpoint or initial state, before it computes anything.
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlhpc.config.safe_yaml import MAX_CONFIG_BYTES, MAX_DEPTH, MAX_NODES
from mlhpc.errors import ECHO_LIMIT
from mlhpc_app.cli.locations import NAME_MAX_BYTES

Setup = Callable[[Path], None]

# Shortening says how much it left out; a case about a huge value checks the words and that the
# value is printed once at most.
SHORTENED = "more characters)"
NO_RESUME_WAYS = ("--no-resume", "or delete the file (rm ")


@dataclass(frozen=True)
class Case:
    """One bad input: the command (after setup), what the error must say, what must not repeat."""

    id: str
    argv: tuple[str, ...]
    expect: tuple[str, ...]
    setup: Setup | None = None
    once: str | None = None  # a long run of text that may appear at most once in the output
    max_output: int = 6_000  # characters: a huge value must not flood the terminal


def _writer(name: str, content: bytes | str) -> Setup:
    def setup(root: Path) -> None:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)

    return setup


def _all(*steps: Setup) -> Setup:
    def setup(root: Path) -> None:
        for step in steps:
            step(root)

    return setup


# --- configs: `mlhpc validate c.yaml` -------------------------------------------------------


def config(case_id: str, content: bytes | str, *expect: str, once: str | None = None) -> Case:
    """A config file with a mistake, checked by `mlhpc validate`."""
    return Case(case_id, ("validate", "c.yaml"), expect, _writer("c.yaml", content), once=once)


def _laughs(levels: int, width: int) -> str:
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def _alias_chain(length: int) -> str:
    lines = ["a0: &a0 [x]"] + [f"a{i}: &a{i} [*a{i - 1}]" for i in range(1, length)]
    return "\n".join(lines) + "\n"


def _nested_blocks(depth: int) -> str:
    return "".join(f"{'  ' * i}k{i}:\n" for i in range(depth)) + f"{'  ' * depth}leaf: 1\n"


HUGE = "x" * 100_000  # a value someone pasted a file into
HUGE_DIGITS = "9" * 5_000  # past Python's 4,300-digit int conversion limit

YAML_CASES = [
    config(
        "tag-python-apply",
        'project: !!python/object/apply:os.system ["echo owned"]\n',
        "the tag !!python/object/apply:os.system is not allowed",
        "c.yaml:1",
    ),
    config("tag-python-name", "project: !!python/name:os.system\n", "the tag !!python/name:os.system"),
    config("tag-python-module", "project: !!python/module:os\n", "the tag !!python/module:os"),
    config(
        "tag-local-cfn", "project:\n  name: !Ref ProjectName\n", "the tag !Ref is not allowed", "c.yaml:2"
    ),
    config("tag-binary", "project:\n  name: !!binary aGVsbG8=\n", "the tag !!binary"),
    config("tag-set", "project: !!set {a, b}\n", "the tag !!set"),
    config("tag-omap", "project: !!omap [a: 1]\n", "the tag !!omap"),
    config("tag-timestamp", "project:\n  name: !!timestamp 2024-01-01\n", "the tag !!timestamp"),
    config(
        "tag-verbatim", "project: !<tag:example.com,2000:thing> x\n", "the tag tag:example.com,2000:thing"
    ),
    config("alias-cycle-list", "a: &a [*a]\n", "the alias *a is inside its own anchor &a"),
    config("alias-cycle-map", "a: &loop {b: *loop}\n", "the alias *loop is inside its own anchor &loop"),
    config("alias-cycle-deep", "a: &a [[[{b: [*a]}]]]\n", "inside its own anchor &a"),
    config("alias-cycle-merge", "a: &m {<<: *m, b: 1}\n", "inside its own anchor &m"),
    config("alias-undefined", "project:\n  name: *nowhere\n", "found undefined alias", "c.yaml:2"),
    config("billion-laughs", _laughs(9, 9), f"more than {MAX_NODES:,} values once its aliases are expanded"),
    config(
        "alias-wide", f"a: &w [{', '.join(['1'] * 2000)}]\nb: [{', '.join(['*w'] * 60)}]\n", f"{MAX_NODES:,}"
    ),
    config(
        "alias-chain-depth", _alias_chain(MAX_DEPTH + 10), f"nested more than {MAX_DEPTH} levels deep once"
    ),
    config(
        "nested-brackets", "a: " + "[" * 300 + "]" * 300 + "\n", f"nested more than {MAX_DEPTH} levels deep"
    ),
    config("nested-blocks", _nested_blocks(MAX_DEPTH + 5), f"nested more than {MAX_DEPTH} levels deep"),
    config(
        "nested-flow-maps", "a: " + "{b: " * 200 + "1" + "}" * 200 + "\n", f"more than {MAX_DEPTH} levels"
    ),
    config(
        "two-documents",
        "project:\n  name: a\n---\nproject:\n  name: b\n",
        "expected a single document in the stream, but found another document",
    ),
    config("tabs", "project:\n\tname: x\n", "not valid YAML", "spaces, not tabs"),
    config("unclosed-quote", 'project:\n  name: "abc\n', "not valid YAML"),
    config("unclosed-bracket", "network:\n  availability_zones: [us-east-1a\n", "not valid YAML"),
    config("bad-indent", "project:\n  name: a\n region: us-east-1\n", "not valid YAML", "c.yaml:3"),
    config("duplicate-key", "network:\n  az_count: 2\n  az_count: 3\n", "key 'az_count' appears twice"),
    config("unhashable-key", "? [a, b]\n: 1\n", "not valid YAML", "unhashable key"),
    config("merge-scalar", "project: {<<: 1, name: a}\n", "not valid YAML", "merging"),
    config("bad-timestamp", "project:\n  name: 2024-13-45\n", "'2024-13-45' cannot be read as !!timestamp"),
    config(
        "bad-explicit-int", "network:\n  az_count: !!int two\n", "'two' cannot be read as !!int", "quote it"
    ),
    config("bad-explicit-float", "network:\n  az_count: !!float many\n", "cannot be read as !!float"),
    config("bad-explicit-bool", "network:\n  gateway_endpoints: !!bool maybe\n", "cannot be read as !!bool"),
    config("explicit-int-empty", "network:\n  az_count: !!int\n", "'' cannot be read as !!int"),
    config("hex-without-digits", "network:\n  az_count: 0x_\n", "cannot be read as !!int"),
    config("int-too-long", f"network:\n  az_count: {HUGE_DIGITS}\n", "cannot be read as !!int", SHORTENED),
    config("top-level-list", "- project\n- network\n", "must be a mapping of sections", "not a list"),
    config("top-level-text", "just some words\n", "must be a mapping of sections", "not a single text"),
    config("top-level-null", "~\n", "must be a mapping of sections", "not null"),
]

SIZE_CASES = [
    config(
        "over-one-mib",
        "a: '" + "x" * MAX_CONFIG_BYTES + "'\n",
        f"a config may be at most {MAX_CONFIG_BYTES:,} bytes",
    ),
    config(
        "many-values", "a: [" + ", ".join(["1"] * (MAX_NODES + 10)) + "]\n", f"more than {MAX_NODES:,} values"
    ),
    config(
        "huge-name", f"project:\n  name: {HUGE}\n", "cannot prefix stack", SHORTENED, once="x" * ECHO_LIMIT
    ),
    config(
        "huge-region", f"project:\n  region: {HUGE}\n", "not an AWS region", SHORTENED, once="x" * ECHO_LIMIT
    ),
    config("huge-key", f"network:\n  ? {HUGE}\n  : 1\n", "unknown key", once="x" * ECHO_LIMIT),
    config(
        "huge-enum", f"network:\n  flow_logs:\n    traffic_type: {HUGE}\n", SHORTENED, once="x" * ECHO_LIMIT
    ),
    config(
        "huge-cidr",
        f"network:\n  cidr: 10.0.0.0/{HUGE_DIGITS[:600]}\n",
        "not an IPv4 CIDR",
        once="9" * ECHO_LIMIT,
    ),
    config("huge-list-value", f"project:\n  name: [{', '.join([HUGE[:1000]] * 50)}]\n", "name must be text"),
]

ENCODING_CASES = [
    config(
        "latin1",
        b"project:\n  name: caf\xe9\n",
        "not UTF-8: byte e9 at offset 20 (line 2, column 12)",
        "iconv",
    ),
    config("utf16-le", "project:\n  name: x\n".encode("utf-16"), "UTF-16", "save it as UTF-8"),
    config("utf16-be", b"\xfe\xff" + "project: {}\n".encode("utf-16-be"), "UTF-16"),
    config("continuation-first", b"\x80project: {}\n", "byte 80 at offset 0 (line 1, column 1)"),
    config("cut-off-sequence", b"project:\n  name: a\xe2\x82", "unexpected end of data", "line 2"),
    config("overlong", b"project:\n  name: \xc0\xaf\n", "not UTF-8", "line 2, column 9"),
    config("surrogate", b"a: 1\nb: 2\nc: \xed\xa0\x80\n", "not UTF-8", "line 3, column 4"),
    config("windows-1252-quotes", b"project:\n  name: \x93x\x94\n", "byte 93"),
    config("nul-byte", b"project:\n  name: a\x00b\n", "#x0000", "not allowed in YAML", "c.yaml:2"),
    config("control-char", b"project:\n  name: \x07\n", "#x0007"),
]

TYPE_CASES = [
    config("name-number", "project:\n  name: 12\n", "name must be text"),
    config("az-count-word", "network:\n  az_count: two\n", "az_count must be a whole number"),
    config("az-count-float", "network:\n  az_count: 2.5\n", "az_count must be a whole number"),
    config("az-count-inf", "network:\n  az_count: .inf\n", "az_count must be a finite number"),
    config("az-count-range", "network:\n  az_count: 100\n", "az_count must be <= 6"),
    config("section-list", "network: [a, b]\n", "must be a mapping of keys"),
    config("section-text", "project: hello\n", "must be a mapping of keys"),
    config("tags-list", "project:\n  tags: [a, b]\n", "must be a mapping of keys"),
    config("cidr-public", "network:\n  cidr: 8.8.0.0/16\n", "not a private (RFC 1918) range"),
    config("cidr-size", "network:\n  cidr: 10.0.0.0/8\n", "outside what mlhpc supports"),
    config("region", "project:\n  region: mars-north-1x\n", "not an AWS region name"),
    config(
        "typo-key", "network:\n  nat_gateway: 1\n", "unknown key 'nat_gateway' (did you mean 'nat_gateways'?)"
    ),
    config("retention", "network:\n  flow_logs:\n    retention_days: 100\n", "cannot keep logs for 100 days"),
    config("account-short", "project:\n  account: '123'\n", "not a 12-digit AWS account id"),
    config("key-int", "1: project\n", "the key 1 is not text: YAML reads it as a number"),
    config("key-bool", "yes: 1\n", "the key True is not text", "quote the key"),
    config("key-null", "~: 1\n", "the key None is not text: YAML reads it as null"),
    config("key-nested-int", "network:\n  3: 1\n", "network.3", "keys here are availability_zones"),
]


FILE_CASES = [
    Case("config-missing", ("validate", "nope.yaml"), ("config file not found",)),
    Case(
        "config-directory",
        ("validate", "conf"),
        ("is a directory, not a file",),
        lambda r: (r / "conf").mkdir(),
    ),
    Case("config-device", ("validate", os.devnull), ("not a regular file",)),
]


# --- `mlhpc run ... --set` -------------------------------------------------------------------


def run(
    case_id: str, *args: str, expect: tuple[str, ...], setup: Setup | None = None, once: str | None = None
) -> Case:
    """`mlhpc run ...`; --dry-run is added where the mistake is found before a job would start."""
    return Case(case_id, ("run", *args), expect, setup, once=once)


SUPERRADIANCE = ("superradiance", "--set", "N=1", "--set", "method=general", "--set", "workers=1")

SET_CASES = [
    run("set-no-equals", "hello", "--dry-run", "--set", "n", expect=("'n' is not key=value",)),
    run("set-no-key", "hello", "--dry-run", "--set", "=5", expect=("'=5' is not key=value",)),
    run("set-not-int", "hello", "--dry-run", "--set", "n=abc", expect=("hello: n='abc' is not valid",)),
    run("set-zero", "hello", "--dry-run", "--set", "n=0", expect=("give n a value >= 1",)),
    run("set-exponent", "hello", "--dry-run", "--set", "n=1e3", expect=("n='1e3' is not valid",)),
    run("set-empty-value", "hello", "--dry-run", "--set", "n=", expect=("n='' is not valid",)),
    run("set-negative-last", "hello", "--dry-run", "--set", "n=5", "--set", "n=-5", expect=("n='-5'",)),
    run("set-unknown", "hello", "--dry-run", "--set", "chunks=3", expect=("(did you mean 'chunk'?)",)),
    run(
        "set-huge-value",
        "hello",
        "--dry-run",
        "--set",
        f"n={HUGE_DIGITS}",
        expect=("is not valid", SHORTENED),
        once="9" * ECHO_LIMIT,
    ),
    run(
        "set-huge-key",
        "hello",
        "--dry-run",
        "--set",
        f"{HUGE}=1",
        expect=("hello has no argument", SHORTENED),
        once="x" * ECHO_LIMIT,
    ),
    run(
        "set-huge-pair",
        "hello",
        "--dry-run",
        "--set",
        HUGE,
        expect=("is not key=value", SHORTENED),
        once="x" * ECHO_LIMIT,
    ),
    run(
        "set-literal",
        *SUPERRADIANCE,
        "--dry-run",
        "--set",
        "method=magic",
        expect=("method='magic'", "one of:"),
    ),
    run(
        "set-list-item",
        *SUPERRADIANCE,
        "--dry-run",
        "--set",
        "coupling_values=1,abc",
        expect=("coupling_values",),
    ),
    run("set-nan", *SUPERRADIANCE, "--dry-run", "--set", "gamma=nan", expect=("gamma='nan' is not valid",)),
    run("set-inf", *SUPERRADIANCE, "--dry-run", "--set", "gamma=inf", expect=("gamma='inf' is not valid",)),
    run("set-pattern", *SUPERRADIANCE, "--dry-run", "--set", "sweep=N=", expect=("sweep='N=' is not valid",)),
    run(
        "set-bool",
        "allreduce",
        "--dry-run",
        "--set",
        "check=perhaps",
        expect=("check='perhaps' is not valid",),
    ),
    run("unknown-workload", "helo", "--dry-run", expect=("unknown workload 'helo' (did you mean 'hello'?)",)),
    run("unknown-workload-huge", HUGE, expect=("unknown workload", SHORTENED), once="x" * ECHO_LIMIT),
]


# --- paths and URIs: --out and --checkpoint-dir ----------------------------------------------


def _file(name: str) -> Setup:
    return _writer(name, "not a directory\n")


def _broken_link(name: str) -> Setup:
    return lambda root: os.symlink(root / "gone", root / name)


LONG_NAME = "n" * (NAME_MAX_BYTES + 1)

PATH_CASES = [
    run(
        "out-under-file",
        "hello",
        "--out",
        "f/sub",
        expect=("cannot use --out 'f/sub'", "'f' is not a directory"),
        setup=_file("f"),
    ),
    run(
        "out-is-file", "hello", "--out", "f", expect=("cannot use --out 'f': it is a file",), setup=_file("f")
    ),
    run(
        "out-deep-under-file",
        "hello",
        "--out",
        "f/a/b/c",
        expect=("'f' is not a directory",),
        setup=_file("f"),
    ),
    run("out-nul", "hello", "--out", "a\0b", expect=("NUL character",)),
    run("out-long-name", "hello", "--out", f"d/{LONG_NAME}", expect=(f"longer than {NAME_MAX_BYTES} bytes",)),
    run(
        "out-unknown-user",
        "hello",
        "--out",
        "~no-such-user-here/runs",
        expect=("'~no-such-user-here' names no user",),
    ),
    run("out-broken-link", "hello", "--out", "link", expect=("broken link",), setup=_broken_link("link")),
    run(
        "ckpt-under-file",
        "hello",
        "--checkpoint-dir",
        "f/ck",
        expect=("cannot use --checkpoint-dir 'f/ck'",),
        setup=_file("f"),
    ),
    run(
        "ckpt-is-file",
        "hello",
        "--checkpoint-dir",
        "f",
        expect=("--checkpoint-dir 'f': it is a file",),
        setup=_file("f"),
    ),
    run("ckpt-nul", "hello", "--checkpoint-dir", "c\0k", expect=("--checkpoint-dir", "NUL character")),
    run("ckpt-long-name", "hello", "--checkpoint-dir", LONG_NAME, expect=("--checkpoint-dir", "longer than")),
    run(
        "ckpt-broken-link", "hello", "--checkpoint-dir", "l", expect=("broken link",), setup=_broken_link("l")
    ),
    run(
        "ckpt-huge",
        "hello",
        "--checkpoint-dir",
        f"f/{HUGE}",
        expect=(SHORTENED,),
        setup=_file("f"),
        once="x" * ECHO_LIMIT,
    ),
    run("out-s3-no-bucket", "hello", "--out", "s3://", expect=("cannot use --out 's3://'", "needs a bucket")),
    run("out-s3-empty-bucket", "hello", "--out", "s3:///runs/one", expect=("needs a bucket",)),
    run(
        "ckpt-s3-no-bucket",
        "hello",
        "--checkpoint-dir",
        "s3://",
        expect=("--checkpoint-dir 's3://'", "needs a bucket"),
    ),
]


# --- initial states: superradiance --set initial_state=... -------------------------------------


def _state(name: str, matrix: np.ndarray) -> Setup:
    def setup(root: Path) -> None:
        np.save(root / name, matrix)

    return setup


def _out(root: Path) -> None:
    (root / "out").mkdir()


def state_case(case_id: str, source: str, *expect: str, setup: Setup | None = None) -> Case:
    """The superradiance job reading a bad initial state (N=1: a 4 x 4 density matrix)."""
    steps = _out if setup is None else _all(_out, setup)
    return run(
        case_id,
        *SUPERRADIANCE,
        "--out",
        "out",
        "--set",
        f"initial_state={source}",
        expect=expect,
        setup=steps,
    )


PURE = np.diag([1.0, 0, 0, 0]).astype(complex)


def _npz_two(root: Path) -> None:
    np.savez(root / "two.npz", a=PURE, b=PURE)


def _pickled_object_npy(root: Path) -> None:
    np.save(root / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)


def _empty_dir(root: Path) -> None:
    (root / "states").mkdir()
    (root / "states" / "notes.txt").write_text("no state here\n")


STATE_CASES = [
    state_case("state-missing", "nope.npy", "input 'nope.npy' does not exist"),
    state_case("state-pickle", "rho.pkl", "is a pickle file", setup=_writer("rho.pkl", pickle.dumps(PURE))),
    state_case(
        "state-pickle-bytes", "rho.npy", "is a pickle file", setup=_writer("rho.npy", pickle.dumps([1]))
    ),
    state_case("state-object-array", "obj.npy", "holds pickled objects", setup=_pickled_object_npy),
    state_case("state-shape", "r.npy", "has shape (2, 2)", "(4, 4)", setup=_state("r.npy", np.eye(2) / 2)),
    state_case("state-nan", "r.npy", "NaN or infinite", setup=_state("r.npy", np.full((4, 4), np.nan))),
    state_case("state-trace", "r.npy", "has trace 2", setup=_state("r.npy", np.diag([1.0, 1, 0, 0]))),
    state_case(
        "state-not-hermitian",
        "r.npy",
        "not Hermitian",
        setup=_state("r.npy", PURE + np.triu(np.ones((4, 4)), 1)),
    ),
    state_case(
        "state-negative", "r.npy", "negative eigenvalue", setup=_state("r.npy", np.diag([1.5, -0.5, 0, 0]))
    ),
    state_case("state-suffix", "r.txt", "unknown format '.txt'", setup=_writer("r.txt", "1 0\n0 0\n")),
    state_case(
        "state-corrupt-npz", "r.npz", "cannot read initial state", setup=_writer("r.npz", os.urandom(64))
    ),
    state_case("state-empty-npy", "r.npy", "cannot read initial state", setup=_writer("r.npy", b"")),
    state_case("state-two-arrays", "two.npz", "holds arrays", setup=_npz_two),
    state_case("state-empty-dir", "states", "should hold exactly one .npz or .npy", setup=_empty_dir),
    state_case("state-s3-no-bucket", "s3://", "'s3://' is not an S3 URI"),
    state_case("state-s3-empty-bucket", "s3:///rho.npy", "is not an S3 URI"),
]


# --- checkpoints: mlhpc run hello reading a bad latest.pt --------------------------------------

HELLO_FINGERPRINT = {"workload": "hello", "n": 10_000, "chunk": 1_000}  # hello's defaults


def _torch_file(payload: object) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def _good() -> bytes:
    return _torch_file({"fingerprint": HELLO_FINGERPRINT, "step": 3, "state": {"total": 6}})


class _NotAllowed:
    """A class weights_only loading refuses."""


def _zip_not_torch() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "hi")
    return buffer.getvalue()


def checkpoint(
    case_id: str, content: Callable[[], bytes] | None, *expect: str, default_dir: bool = False
) -> Case:
    """hello resuming from a latest.pt holding `content` (None: a directory in its place)."""
    where = "out/checkpoints" if default_dir else "ck"

    def setup(root: Path) -> None:
        (root / "out").mkdir()
        target = root / where / "latest.pt"
        target.parent.mkdir(parents=True, exist_ok=True)
        if content is None:
            target.mkdir()
        else:
            target.write_bytes(content())

    args = ("hello", "--out", "out") + (() if default_dir else ("--checkpoint-dir", "ck"))
    return run(
        case_id,
        *args,
        expect=(f"cannot resume from the checkpoint {where}/latest.pt", *expect, *NO_RESUME_WAYS),
        setup=setup,
    )


CHECKPOINT_CASES = [
    checkpoint("ckpt-empty", lambda: b"", "the file is empty"),
    checkpoint("ckpt-truncated", lambda: _good()[: len(_good()) // 2], "truncated or damaged"),
    checkpoint("ckpt-truncated-tail", lambda: _good()[:-20], "truncated or damaged"),
    checkpoint("ckpt-text", lambda: b"step: 3\n", "not a checkpoint file"),
    checkpoint("ckpt-random", lambda: os.urandom(2048), "not a checkpoint file"),
    checkpoint("ckpt-legacy-pickle", lambda: pickle.dumps({"step": 3}), "not a checkpoint file"),
    checkpoint("ckpt-zip-not-torch", _zip_not_torch, "truncated or damaged"),
    checkpoint(
        "ckpt-tensor", lambda: _torch_file(__import__("torch").ones(3)), "not an mlhpc checkpoint", "a Tensor"
    ),
    checkpoint("ckpt-missing-keys", lambda: _torch_file({"model": {}}), "not an mlhpc checkpoint", "'model'"),
    checkpoint(
        "ckpt-bad-step",
        lambda: _torch_file({"fingerprint": HELLO_FINGERPRINT, "step": "three", "state": {}}),
        "step a count >= 0",
    ),
    checkpoint(
        "ckpt-python-object",
        lambda: _torch_file({"fingerprint": HELLO_FINGERPRINT, "step": 1, "state": {"o": _NotAllowed()}}),
        "holds Python objects",
    ),
    checkpoint(
        "ckpt-foreign",
        lambda: _torch_file(
            {"fingerprint": {**HELLO_FINGERPRINT, "n": 77}, "step": 1, "state": {"total": 1}}
        ),
        "belongs to another run (n: checkpoint 77 vs run 10000)",
        "use another --checkpoint-dir",
    ),
    checkpoint(
        "ckpt-other-workload",
        lambda: _torch_file({"fingerprint": {"workload": "pinn"}, "step": 1, "state": {}}),
        "belongs to another run",
        "workload: checkpoint 'pinn' vs run 'hello'",
    ),
    Case(
        "ckpt-directory",
        ("run", "hello", "--out", "out", "--checkpoint-dir", "ck", "--no-resume"),
        ("cannot resume from the checkpoint ck/latest.pt: it is not a file", "rm -r ck/latest.pt"),
        _all(_out, lambda root: (root / "ck" / "latest.pt").mkdir(parents=True)),
    ),
    checkpoint("ckpt-default-dir", lambda: b"", "the file is empty", default_dir=True),
]


# The groups the issue names: configs (YAML edge cases, sizes, encodings, types), --set values,
# paths and URIs, initial states and checkpoints.
GROUPS: dict[str, list[Case]] = {
    "yaml": YAML_CASES,
    "size": SIZE_CASES,
    "encoding": ENCODING_CASES,
    "type": TYPE_CASES,
    "file": FILE_CASES,
    "set": SET_CASES,
    "path": PATH_CASES,
    "state": STATE_CASES,
    "checkpoint": CHECKPOINT_CASES,
}
CASES = [case for cases in GROUPS.values() for case in cases]
