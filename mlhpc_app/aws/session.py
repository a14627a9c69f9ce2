"""A boto3 session for the CLI: region and credentials checked up front, throttling retried.

Every client retries throttling and transient errors with botocore's *standard* mode
(exponential backoff with jitter, up to ``MAX_ATTEMPTS`` tries). Polling loops that call
describe APIs again and again add their own backoff on top (:func:`with_backoff`),
because a follow loop must survive minutes of throttling, not a few seconds.
``AWS_ENDPOINT_URL`` (boto3's own variable) points every client at another endpoint, such
as a moto server.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from mlhpc.errors import NoCredentials, NoRegion, Throttled

MAX_ATTEMPTS = 8
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
        "ProvisionedThroughputExceededException",
    }
)

T = TypeVar("T")

# Where a region comes from, in order: --region, then these variables, then the profile. boto3 itself
# reads only AWS_DEFAULT_REGION; AWS_REGION is what the other AWS SDKs and the CLI v2 read, so mlhpc
# takes either rather than telling a user to set one that boto3 ignores.
REGION_VARIABLES = ("AWS_REGION", "AWS_DEFAULT_REGION")


def region_fix(config_region: str = "") -> str:
    """Return the fix for a missing region: a variable that is really read, or --region."""
    region = config_region or "us-east-1"
    return f"export AWS_DEFAULT_REGION={region} (AWS_REGION works too) or pass --region {region}"


def is_throttling(err: BaseException) -> bool:
    """True for a botocore ClientError whose code says AWS is throttling us."""
    from botocore.exceptions import ClientError

    return isinstance(err, ClientError) and err.response.get("Error", {}).get("Code") in THROTTLING_CODES


def with_backoff(
    call: Callable[[], T],
    *,
    what: str,
    attempts: int = MAX_ATTEMPTS,
    base_s: float = 0.5,
    cap_s: float = 20.0,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call, retrying throttling with capped exponential backoff and full jitter; raise Throttled at the end."""
    waited = 0.0
    for attempt in range(attempts):
        try:
            return call()
        except Exception as err:
            if not is_throttling(err):
                raise
            if attempt == attempts - 1:
                raise Throttled(
                    f"AWS kept throttling {what} ({attempts} tries over {waited:.0f} s)",
                    fix="the account is making too many API calls right now; wait a minute and try again",
                ) from err
            delay = random.uniform(0, min(cap_s, base_s * 2**attempt))
            waited += delay
            sleep(delay)
    raise AssertionError("unreachable")


@dataclass
class Aws:
    """A boto3 session with a known region and credentials, handing out retrying clients."""

    region: str
    profile: str | None = None
    _session: Any = None
    _clients: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def connect(
        cls, *, region: str | None = None, profile: str | None = None, config_region: str = ""
    ) -> Aws:
        """Open a session; raise NoRegion / NoCredentials with the fix when either is missing."""
        import boto3
        from botocore.exceptions import ProfileNotFound

        region = region or next((os.environ[v] for v in REGION_VARIABLES if os.environ.get(v)), None)
        try:
            session = boto3.Session(profile_name=profile, region_name=region)
        except ProfileNotFound as err:
            raise NoCredentials(
                f"AWS profile '{profile}' is not configured",
                fix="run `aws configure --profile NAME` or pass an existing --profile",
            ) from err
        if not session.region_name:
            hint = f" (the config deploys to {config_region})" if config_region else ""
            raise NoRegion(
                f"no AWS region is set{hint}: no --region, {' or '.join(REGION_VARIABLES)}, "
                "and the profile names none",
                fix=region_fix(config_region),
            )
        if session.get_credentials() is None:
            raise NoCredentials(
                "no AWS credentials found",
                fix="run `aws configure` or `aws sso login`, or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
            )
        return cls(region=session.region_name, profile=profile, _session=session)

    def client(self, service: str, *, retries: bool = True) -> Any:
        """Return a (cached) client; retries=False gives one that never repeats a call by itself."""
        key = f"{service}:{retries}"
        if key not in self._clients:
            from botocore.config import Config

            attempts = MAX_ATTEMPTS if retries else 1
            config = Config(
                retries={"mode": "standard", "max_attempts": attempts},
                user_agent_extra="mlhpc-cli",
            )
            self._clients[key] = self._session.client(service, region_name=self.region, config=config)
        return self._clients[key]
