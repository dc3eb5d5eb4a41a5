"""Dagster resources wrapping the Fullbay client and the warehouse engine, and the
resources of the code location built from the environment."""

import os
from collections.abc import Callable, Mapping
from typing import Any

from dagster import ConfigurableResource, EnvVar, InitResourceContext
from pydantic import Field, PrivateAttr
from sqlalchemy import URL, Engine
from sqlalchemy.exc import OperationalError

from fullbay_dagster.aws.rds import rds_iam_token_source
from fullbay_dagster.aws.secrets import API_KEY_FIELD, DB_PASSWORD_FIELD, provider_for
from fullbay_dagster.defs.runs import release_dead_runs
from fullbay_dagster.defs.settings import ClientTuning, Settings
from fullbay_dagster.fullbay.client import (
    DEFAULT_AUTH_FAIL_PATTERN,
    DEFAULT_BASE_URL,
    DEFAULT_IP_ECHO_URL,
    DEFAULT_REQUEST_FAIL_PATTERN,
    ClientStats,
    FullbayClient,
    FullbayClientConfig,
    LogSink,
)
from fullbay_dagster.fullbay.errors import FullbayPermanentError
from fullbay_dagster.warehouse import migrate
from fullbay_dagster.warehouse.engine import (
    WarehouseConfigError,
    describe,
    make_engine,
    normalise_url,
    url_from_parts,
)


class WarehouseUnavailableError(RuntimeError):
    """The database could not be reached or refused us; the message names host and port."""


# Every step that calls Fullbay takes a slot of this pool; dagster.yaml sets its limit
# (one: Fullbay publishes no rate limit), whichever way the run was launched.
FULLBAY_POOL = "fullbay_api"


class FullbayAPIResource(ConfigurableResource):
    """Where Fullbay is and how to authenticate. Pacing and timeouts are ``ClientTuning``."""

    api_key: str | None = Field(default=None, description="FULLBAY_API_KEY: the account's API key (secret)")
    secret_name: str | None = Field(
        default=None, description="SECRETS_MANAGER_SECRET_NAME: read fullbay_api_key from this JSON secret"
    )
    aws_region: str | None = Field(default=None, description="AWS_REGION of the secret")
    base_url: str = Field(default=DEFAULT_BASE_URL, description="FULLBAY_API_BASE_URL")
    public_ip: str | None = Field(
        default=None, description="FULLBAY_PUBLIC_IP: the allow-listed egress IP; detected when unset"
    )
    ip_echo_url: str = Field(default=DEFAULT_IP_ECHO_URL, description="where to detect the public IP")
    token_timezone: str = Field(default="UTC", description="timezone of the token's 'today'")
    auth_fail_pattern: str = Field(
        default=DEFAULT_AUTH_FAIL_PATTERN,
        description="FULLBAY_AUTH_FAIL_PATTERN: a FAIL message matching it is a bad key or IP (no retry)",
    )
    empty_fail_pattern: str = Field(
        default="",
        description="FULLBAY_EMPTY_FAIL_PATTERN: a FAIL message matching it means the window has no records",
    )
    request_fail_pattern: str = Field(
        default=DEFAULT_REQUEST_FAIL_PATTERN,
        description="FULLBAY_REQUEST_FAIL_PATTERN: a FAIL message matching it is a bad request (no retry)",
    )

    def client_config(self, api_key: str, tuning: ClientTuning | None = None) -> FullbayClientConfig:
        """Where to call comes from here, how to pace and wait from ``tuning`` (run config,
        then FULLBAY_* variables): overriding one never drops the other."""
        return FullbayClientConfig(
            api_key=api_key,
            base_url=self.base_url,
            public_ip=self.public_ip,
            ip_echo_url=self.ip_echo_url,
            token_timezone=self.token_timezone,
            auth_fail_pattern=self.auth_fail_pattern,
            request_fail_pattern=self.request_fail_pattern,
            empty_fail_pattern=self.empty_fail_pattern,
            **(tuning or ClientTuning()).client_kwargs(),
        )

    def setup_for_execution(self, context: InitResourceContext) -> None:
        # Runs once per run before any step waits on the pool (one process per run).
        if context.instance is not None and context.run is not None:
            released = release_dead_runs(context.instance, context.run.run_id, FULLBAY_POOL)
            if released and context.log is not None:
                context.log.warning(f"Freed the {FULLBAY_POOL} slots of killed runs: {', '.join(released)}")

    def get_client(self, log: LogSink | None = None, tuning: ClientTuning | None = None) -> FullbayClient:
        if self.secret_name:
            secret = provider_for(self.secret_name, self.aws_region)
            return FullbayClient(
                self.client_config(secret.get(API_KEY_FIELD), tuning),
                logger=log,
                refresh_api_key=lambda: secret.refresh(API_KEY_FIELD),
            )
        if not self.api_key:
            raise FullbayPermanentError(
                "No Fullbay API key is configured: set FULLBAY_API_KEY, or SECRETS_MANAGER_SECRET_NAME "
                f"naming a JSON secret with a {API_KEY_FIELD!r} field."
            )
        return FullbayClient(self.client_config(self.api_key, tuning), logger=log)


class WarehouseResource(ConfigurableResource):
    """The PostgreSQL (RDS) warehouse; SQLite URLs work for local demos.

    The schema is brought to the current version when a run first uses it.
    """

    database_url: str | None = Field(default=None, description="DATABASE_URL; overrides the DB_* parts")
    db_host: str | None = Field(default=None, description="DB_HOST")
    db_port: int = Field(default=5432, description="DB_PORT")
    db_name: str | None = Field(default=None, description="DB_NAME")
    db_user: str | None = Field(default=None, description="DB_USER")
    db_password: str | None = Field(default=None, description="DB_PASSWORD (secret)")
    db_sslmode: str | None = Field(default=None, description="DB_SSLMODE; `require` by default when deployed")
    db_iam_auth: bool = Field(default=False, description="DB_IAM_AUTH: a fresh RDS IAM token per connection")
    secret_name: str | None = Field(
        default=None, description="SECRETS_MANAGER_SECRET_NAME: read db_password from this JSON secret"
    )
    aws_region: str | None = Field(default=None, description="AWS_REGION of the secret and the RDS instance")
    pool_size: int = Field(default=5, description="pooled connections per process (a run uses one at a time)")

    _engine: Engine | None = PrivateAttr(default=None)

    def url(self) -> URL:
        if self.database_url:
            return normalise_url(self.database_url)
        if self.db_host and self.db_name and self.db_user:
            return url_from_parts(self.db_host, self.db_port, self.db_name, self.db_user, self.db_password)
        raise WarehouseConfigError(
            "No warehouse database is configured: set DATABASE_URL "
            "(postgresql://user:password@host:5432/db), or DB_HOST, DB_NAME, DB_USER and DB_PASSWORD. "
            "There is no silent local fallback outside the demo."
        )

    def describe(self) -> str:
        return describe(self.url())

    def _password_source(self, url: URL) -> tuple[Callable[[], str] | None, Callable[[], object] | None]:
        """Where each new connection gets its password, and how to re-read it after a rejection.
        The secret wins over a password in the URL, as it does for the API key: ECS injects
        DB_PASSWORD once at task start, and a rotation must not outlive it unseen."""
        if self.db_iam_auth:
            return rds_iam_token_source(url, self.aws_region), None
        if self.secret_name:
            secret = provider_for(self.secret_name, self.aws_region)
            return (lambda: secret.get(DB_PASSWORD_FIELD)), (lambda: secret.refresh(DB_PASSWORD_FIELD))
        return None, None

    def get_engine(self) -> Engine:
        if self._engine is None:
            url = self.url()
            password, refresh = self._password_source(url)
            engine = make_engine(url, sslmode=self.db_sslmode, pool_size=self.pool_size, password=password)
            try:
                try:
                    migrate.upgrade(engine)
                except OperationalError as exc:
                    if refresh is None or "password authentication failed" not in str(exc.orig):
                        raise
                    refresh()  # the password may have been rotated since we cached it
                    engine.dispose()
                    migrate.upgrade(engine)
            except OperationalError as exc:
                engine.dispose()
                reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
                raise WarehouseUnavailableError(
                    f"Cannot use the warehouse at {describe(url)}: {reason}. Check DATABASE_URL/DB_HOST, "
                    "DB_PORT, that the database accepts connections from here (security group), and DB_SSLMODE."
                ) from None
            self._engine = engine
        return self._engine

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._engine = None

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


class AlertsResource(ConfigurableResource):
    """CloudWatch metrics and SNS alerts in deployed environments; a no-op locally."""

    enabled: bool = Field(default=False, description="on where ENVIRONMENT is prod/production/staging")
    environment: str = Field(default="local", description="ENVIRONMENT: a dimension of every metric")
    metrics_namespace: str = Field(default="Fullbay/Ingestion", description="FULLBAY_METRICS_NAMESPACE")
    topic_arn: str | None = Field(default=None, description="FULLBAY_ALERT_TOPIC_ARN: SNS topic for failures")
    aws_region: str | None = Field(default=None, description="AWS_REGION")

    def put_metrics(self, values: dict[str, float], **dimensions: str) -> None:
        if self.enabled:
            from fullbay_dagster.aws.notify import put_metrics

            put_metrics(
                self.metrics_namespace,
                values,
                {"Environment": self.environment, **dimensions},
                region_name=self.aws_region,
            )

    def put_api_metrics(self, stats: ClientStats, endpoint: str, partition: str) -> None:
        """Requests a step made to Fullbay, and how many it retried."""
        self.put_metrics(
            {"ApiRequests": stats.requests, "FailedRequests": stats.retries}, Endpoint=endpoint, Partition=partition
        )

    def put_day_metrics(self, row: Mapping[str, Any], endpoint: str) -> None:
        """One day's figures from its run-log row, under the same names for every endpoint."""
        duration = (row["end_time"] - row["start_time"]).total_seconds() if row["end_time"] else 0.0
        self.put_metrics(
            {
                "RecordsProcessed": row["records_processed"],
                "RecordsInserted": row["records_inserted"],
                "RecordsUpdated": row["records_updated"],
                "RecordsDeleted": row["records_deleted"],
                "DurationSeconds": duration,
            },
            Endpoint=endpoint,
            Partition=row["partition_key"],
        )

    def alert(self, subject: str, message: str) -> str | None:
        if not (self.enabled and self.topic_arn):
            return None
        from fullbay_dagster.aws.notify import publish_alert

        return publish_alert(self.topic_arn, subject, message, region_name=self.aws_region)


# Optional settings become EnvVar references only when set: an EnvVar that is
# unset fails the run, and a plain value would show in the UI (bad for secrets).
_AWS = {"secret_name": "SECRETS_MANAGER_SECRET_NAME", "aws_region": "AWS_REGION"}
_FULLBAY = {
    **_AWS,
    "api_key": "FULLBAY_API_KEY",
    "base_url": "FULLBAY_API_BASE_URL",
    "public_ip": "FULLBAY_PUBLIC_IP",
    "ip_echo_url": "FULLBAY_IP_ECHO_URL",
    "token_timezone": "FULLBAY_TOKEN_TIMEZONE",
    "auth_fail_pattern": "FULLBAY_AUTH_FAIL_PATTERN",
    "request_fail_pattern": "FULLBAY_REQUEST_FAIL_PATTERN",
    "empty_fail_pattern": "FULLBAY_EMPTY_FAIL_PATTERN",
}
_WAREHOUSE = {
    **_AWS,
    "database_url": "DATABASE_URL",
    "db_host": "DB_HOST",
    "db_name": "DB_NAME",
    "db_user": "DB_USER",
    "db_password": "DB_PASSWORD",
    "db_sslmode": "DB_SSLMODE",
}


def _present(mapping: dict[str, str]) -> dict[str, Any]:
    return {field: EnvVar(name) for field, name in mapping.items() if os.environ.get(name)}


def resources_from_env(settings: Settings) -> dict[str, ConfigurableResource]:
    warehouse_fields = _present(_WAREHOUSE)
    if os.environ.get("DB_PORT"):
        warehouse_fields["db_port"] = EnvVar.int("DB_PORT")
    if os.environ.get("DB_IAM_AUTH", "").lower() in ("1", "true", "yes"):
        warehouse_fields["db_iam_auth"] = True
    if settings.deployed and "db_sslmode" not in warehouse_fields:
        warehouse_fields["db_sslmode"] = "require"  # RDS in production: TLS unless told otherwise
    alerts_fields = _present({"topic_arn": "FULLBAY_ALERT_TOPIC_ARN", "aws_region": "AWS_REGION"})
    if os.environ.get("FULLBAY_METRICS_NAMESPACE"):
        alerts_fields["metrics_namespace"] = os.environ["FULLBAY_METRICS_NAMESPACE"]
    return {
        "fullbay": FullbayAPIResource(**_present(_FULLBAY)),
        "warehouse": WarehouseResource(**warehouse_fields),
        "alerts": AlertsResource(enabled=settings.deployed, environment=settings.environment, **alerts_fields),
    }
