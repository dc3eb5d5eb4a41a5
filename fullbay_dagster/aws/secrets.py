"""Credentials from one AWS Secrets Manager JSON secret (``fullbay_api_key``, ``db_password``).

boto3 directly rather than dagster-aws's ``SecretsManagerSecretsResource``: that
resource reads secrets once at resource set-up, while a run here must re-read a
rotated secret in the middle of its work when Fullbay or the database rejects the
old value, and cache it for a bounded time in between.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

API_KEY_FIELD = "fullbay_api_key"
DB_PASSWORD_FIELD = "db_password"  # noqa: S105 (a field name)
DEFAULT_TTL_SECONDS = 300.0


class SecretError(RuntimeError):
    """The secret cannot be read or lacks a field; names the secret and field, never a value."""


class SecretsProvider:
    """Reads the JSON secret, caches it for ``ttl`` seconds, and can be told to re-read."""

    def __init__(
        self,
        secret_name: str,
        *,
        region_name: str | None = None,
        ttl: float = DEFAULT_TTL_SECONDS,
        client: Any = None,
    ) -> None:
        if not secret_name:
            raise SecretError("SECRETS_MANAGER_SECRET_NAME is empty")
        self.secret_name = secret_name
        self._region = region_name
        self._ttl = ttl
        self._client = client
        self._lock = threading.Lock()
        self._values: dict[str, Any] | None = None
        self._read_at = 0.0
        self.reads = 0

    def _boto_client(self) -> Any:
        if self._client is None:
            import boto3  # deferred: only deployed runs read secrets

            self._client = boto3.client("secretsmanager", region_name=self._region)
        return self._client

    def _read(self) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self._boto_client().get_secret_value(SecretId=self.secret_name)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "ClientError")
            raise SecretError(f"Cannot read secret {self.secret_name!r} from Secrets Manager: {code}") from None
        except BotoCoreError as exc:
            raise SecretError(
                f"Cannot reach Secrets Manager for secret {self.secret_name!r}: {type(exc).__name__}"
            ) from None
        self.reads += 1
        try:
            values = json.loads(response.get("SecretString") or "")
        except ValueError:
            raise SecretError(
                f"Secret {self.secret_name!r} is not a JSON object (expected keys {API_KEY_FIELD}, {DB_PASSWORD_FIELD})"
            ) from None
        if not isinstance(values, dict):
            raise SecretError(f"Secret {self.secret_name!r} is JSON but not an object")
        return values

    def get(self, field: str) -> str:
        with self._lock:
            if self._values is None or time.monotonic() - self._read_at > self._ttl:
                self._values = self._read()
                self._read_at = time.monotonic()
            value = self._values.get(field)
        if not isinstance(value, str) or not value:
            raise SecretError(f"Secret {self.secret_name!r} has no non-empty string field {field!r}")
        return value

    def refresh(self, field: str) -> str:
        """Forget the cache and read again: the value may have been rotated."""
        with self._lock:
            self._values = None
        return self.get(field)


_providers: dict[tuple[str, str | None], SecretsProvider] = {}
_providers_lock = threading.Lock()


def provider_for(secret_name: str, region_name: str | None = None) -> SecretsProvider:
    """One provider per secret and process, so the cache is shared by every resource."""
    with _providers_lock:
        key = (secret_name, region_name)
        if key not in _providers:
            _providers[key] = SecretsProvider(secret_name, region_name=region_name)
        return _providers[key]


def forget_cached_secrets() -> None:
    """Drop every provider (and its cache); for tests that swap the AWS account."""
    with _providers_lock:
        _providers.clear()
