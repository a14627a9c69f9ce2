"""Retries: throttling in polling loops backs off and finally says what to do."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from mlhpc.errors import Throttled
from mlhpc_app.aws.session import with_backoff


def throttle() -> ClientError:
    return ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "DescribeJobs")


def test_throttling_is_retried_until_it_passes() -> None:
    calls, sleeps = [], []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise throttle()
        return "ok"

    assert with_backoff(flaky, what="batch:DescribeJobs", sleep=sleeps.append) == "ok"
    assert len(calls) == 3 and len(sleeps) == 2
    # Full jitter under a doubling cap: 0 <= delay_k <= 0.5 * 2**k.
    assert all(0 <= s <= 0.5 * 2**k for k, s in enumerate(sleeps))


def test_throttling_that_never_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    def always() -> str:
        raise throttle()

    with pytest.raises(Throttled) as caught:
        with_backoff(always, what="batch:DescribeJobs", attempts=4, sleep=lambda _s: None)
    assert str(caught.value).startswith("AWS kept throttling batch:DescribeJobs (4 tries over ")
    assert (
        caught.value.fix == "the account is making too many API calls right now; wait a minute and try again"
    )


def test_other_errors_are_not_retried() -> None:
    calls = []

    def denied() -> str:
        calls.append(1)
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "DescribeJobs")

    with pytest.raises(ClientError):
        with_backoff(denied, what="x", sleep=lambda _s: None)
    assert len(calls) == 1
