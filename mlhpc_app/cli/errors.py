"""One table from exception to the message a user reads; user errors exit 1, anything else is a bug.

Each row: which exceptions it matches, and how to say what happened, how to fix it and
what to run next. Commands are wrapped with :func:`handle_errors`; an exception that
matches no row propagates to :func:`mlhpc_app.cli.main.run`, which reports a bug (exit 70).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import typer

from mlhpc.errors import JobFailed, MlhpcError, shorten
from mlhpc_app.cli.output import err_console

EXIT_USER_ERROR = 1
# A safety net under every message's own shortening: no line of an error report is longer than this,
# whatever value a message forgot to shorten (the messages themselves cut values at ECHO_LIMIT).
REPORT_LINE_LIMIT = 1_000


@dataclass(frozen=True)
class Message:
    """What a user reads: the problem, the fix, the next command (and extra lines, e.g. the last logs)."""

    text: str
    fix: str = ""
    next_command: str = ""
    details: tuple[str, ...] = ()


def _client_code(err: Any) -> str:
    return str(getattr(err, "response", {}).get("Error", {}).get("Code", ""))


def _client_op(err: Any) -> str:
    return str(getattr(err, "operation_name", "") or "the call")


def _mlhpc(err: MlhpcError) -> Message:
    details: tuple[str, ...] = ()
    if isinstance(err, JobFailed):
        details = (
            f"status reason: {err.reason or '(none given)'}",
            *(
                ["last log lines:", *(f"  {line}" for line in err.last_lines)]
                if err.last_lines
                else ["(no log lines)"]
            ),
        )
    return Message(err.message, err.fix, err.next_command, details)


def _spec(err: Any) -> Message:
    return Message(err.message, err.fix)


def _config(err: Any) -> Message:
    return Message(str(err), "", f"mlhpc validate {getattr(err, 'source', 'FILE')}")


def _no_credentials(_err: Any) -> Message:
    return Message(
        "no AWS credentials found",
        "run `aws configure` or `aws sso login`, or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
    )


def _no_region(_err: Any) -> Message:
    from mlhpc_app.aws.session import region_fix

    return Message("no AWS region is set", region_fix())


def _endpoint(err: Any) -> Message:
    return Message(
        f"cannot reach AWS: {err}",
        "check the network, a proxy or AWS_ENDPOINT_URL, then run the command again",
    )


BAD_CREDENTIALS = frozenset(
    {
        "ExpiredToken",
        "ExpiredTokenException",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
    }
)


def _client_error(err: Any) -> Message:
    from mlhpc_app.aws.session import is_throttling

    code, op = _client_code(err), _client_op(err)
    detail = getattr(err, "response", {}).get("Error", {}).get("Message", "") or str(err)
    if code in BAD_CREDENTIALS:
        return Message(
            f"AWS rejected the credentials ({code}) on {op}",
            "refresh them: `aws sso login` or `aws configure`",
        )
    if code.startswith("AccessDenied") or code == "UnauthorizedOperation":
        return Message(
            f"AWS denied {op}: {detail}", "use a role allowed to call it (the operator role of this project)"
        )
    if is_throttling(err):
        return Message(
            f"AWS kept throttling {op} after every retry", "wait a minute and run the command again"
        )
    return Message(
        f"AWS refused {op} ({code}): {detail}", "correct what the message names and run the command again"
    )


def _table() -> list[tuple[tuple[type[BaseException], ...], Callable[[Any], Message]]]:
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, NoRegionError

    from mlhpc.config import ConfigError
    from mlhpc.spec import SpecError

    return [
        ((ConfigError,), _config),  # an MlhpcError too: this row, with its issues, comes first
        ((MlhpcError,), _mlhpc),
        ((SpecError,), _spec),
        ((NoCredentialsError,), _no_credentials),
        ((NoRegionError,), _no_region),
        ((EndpointConnectionError,), _endpoint),
        ((ClientError,), _client_error),
    ]


def message_for(err: BaseException) -> Message | None:
    """Return the user message for an exception, or None when it is a bug."""
    for types, render in _table():
        if isinstance(err, types):
            return render(err)
    return None


def report(message: Message) -> None:
    """Print a user message on stderr: error, details, fix, next command."""
    from rich.markup import escape

    def cut(text: str) -> str:
        return "\n".join(shorten(line, REPORT_LINE_LIMIT) for line in text.split("\n"))

    err_console.print(f"[bold red]error:[/] {escape(cut(message.text))}", markup=True, highlight=False)
    for line in message.details:
        err_console.print(f"  {cut(line)}", markup=False)
    if message.fix:
        err_console.print(f"  fix: {cut(message.fix)}", markup=False)
    if message.next_command:
        err_console.print(f"  next: {cut(message.next_command)}", markup=False)


F = TypeVar("F", bound=Callable[..., Any])


def handle_errors(command: F) -> F:
    """Wrap a command so user errors print their message and exit 1 (bugs still propagate)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except Exception as err:
            message = message_for(err)
            if message is None:
                raise
            report(message)
            raise typer.Exit(EXIT_USER_ERROR) from None

    return wrapper  # type: ignore[return-value]
