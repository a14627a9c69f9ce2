"""CloudWatch Logs: read a job's log stream from the start, page by page, and keep reading while it runs."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from mlhpc_app.aws.session import Aws, with_backoff


@dataclass
class LogReader:
    """Read new events of one stream each time :meth:`poll` is called (resumes where it stopped)."""

    aws: Aws
    group: str
    stream: str
    _token: str | None = None
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=20))

    def poll(self) -> list[str]:
        """Return the lines written since the last poll (empty while the stream does not exist yet)."""
        from botocore.exceptions import ClientError

        if not self.stream:
            return []
        logs = self.aws.client("logs")
        lines: list[str] = []
        while True:
            kwargs: dict[str, Any] = {
                "logGroupName": self.group,
                "logStreamName": self.stream,
                "startFromHead": True,
            }
            if self._token:
                kwargs["nextToken"] = self._token
            try:
                page = with_backoff(lambda kw=kwargs: logs.get_log_events(**kw), what="logs:GetLogEvents")  # type: ignore[misc]
            except ClientError as err:
                if err.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                    return lines  # the container has not written yet
                raise
            events = [e["message"].rstrip("\n") for e in page.get("events", [])]
            lines += events
            token = page.get("nextForwardToken")
            # The forward token repeats when there is nothing new.
            if not events or token == self._token:
                self._token = token or self._token
                break
            self._token = token
        self.tail.extend(lines)
        return lines


def last_lines(aws: Aws, group: str, stream: str, count: int = 20) -> list[str]:
    """Return the last lines of a stream (all of it read once; jobs' logs are modest)."""
    reader = LogReader(aws, group, stream, tail=deque(maxlen=count))
    reader.poll()
    return list(reader.tail)


def find_stream(aws: Aws, group: str, prefix: str) -> str:
    """Return the first stream of a group whose name starts with prefix ('' when none yet)."""
    from botocore.exceptions import ClientError

    logs = aws.client("logs")
    try:
        page = with_backoff(
            lambda: logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=prefix),
            what="logs:DescribeLogStreams",
        )
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return ""
        raise
    streams = sorted(s["logStreamName"] for s in page.get("logStreams", []))
    return streams[0] if streams else ""
