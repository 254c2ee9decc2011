"""Per-process SDK clients for the actions, built lazily (after the prefork fork) and reused.

botocore fixes timeouts when a client is built, so Lambda and AgentCore clients are cached per
whole-second read timeout (the step's remaining budget, rounded up): a call never waits longer
than its step may run. SDK-level retries are off everywhere: the engine's in-process budget
(tenacity) and the workflow's retry policy are the only retry loops.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from typing import Any

from shared.settings import Settings

CONNECT_TIMEOUT = 5.0
_CACHED_TIMEOUTS = 16


class Clients:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._boto: OrderedDict[tuple[str, int], Any] = OrderedDict()
        self._session: Any = None
        self._http: Any = None
        self._anthropic: Any = None

    def _boto_client(self, service: str, read_timeout: float, endpoint_url: str | None) -> Any:
        seconds = max(1, math.ceil(read_timeout))
        key = (service, seconds)
        with self._lock:
            client = self._boto.get(key)
            if client is not None:
                self._boto.move_to_end(key)
                return client
            import boto3  # noqa: PLC0415
            from botocore.config import Config  # noqa: PLC0415

            if self._session is None:
                self._session = boto3.session.Session()
            config = Config(
                connect_timeout=min(CONNECT_TIMEOUT, seconds),
                read_timeout=seconds,
                retries={"total_max_attempts": 1, "mode": "standard"},
                max_pool_connections=4,
            )
            kwargs: dict[str, Any] = {"region_name": self.settings.region, "config": config}
            if endpoint_url:
                kwargs["endpoint_url"] = endpoint_url
            client = self._session.client(service, **kwargs)
            self._boto[key] = client
            while len(self._boto) > _CACHED_TIMEOUTS:
                self._boto.popitem(last=False)
            return client

    def lambda_client(self, read_timeout: float) -> Any:
        """Endpoint: ``lambda_endpoint_url`` setting, else boto3's ``AWS_ENDPOINT_URL_LAMBDA``."""
        return self._boto_client("lambda", read_timeout, self.settings.lambda_endpoint_url)

    def agentcore_client(self, read_timeout: float) -> Any:
        """Endpoint: boto3's ``AWS_ENDPOINT_URL_BEDROCK_AGENTCORE`` (or the AWS default)."""
        return self._boto_client("bedrock-agentcore", read_timeout, None)

    def http(self) -> Any:
        with self._lock:
            if self._http is None:
                import httpx  # noqa: PLC0415

                self._http = httpx.Client(
                    follow_redirects=False,
                    limits=httpx.Limits(max_connections=8, max_keepalive_connections=4),
                    headers={"User-Agent": "conveyor-worker"},
                )
            return self._http

    def anthropic(self) -> Any:
        with self._lock:
            if self._anthropic is None:
                import anthropic  # noqa: PLC0415

                key = self.settings.anthropic_api_key
                self._anthropic = anthropic.Anthropic(
                    api_key=key.get_secret_value() if key is not None else None,
                    base_url=self.settings.anthropic_base_url,
                    max_retries=0,
                )
            return self._anthropic

    def close(self) -> None:
        with self._lock:
            if self._http is not None:
                self._http.close()
                self._http = None
            if self._anthropic is not None:
                self._anthropic.close()
                self._anthropic = None
            self._boto.clear()
