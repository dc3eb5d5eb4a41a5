"""Dagster resources wrapping the Fullbay client and the warehouse engine."""

from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field, PrivateAttr
from sqlalchemy import URL, Engine
from sqlalchemy.exc import OperationalError

from fullbay_dagster.fullbay.client import (
    DEFAULT_BASE_URL,
    DEFAULT_IP_ECHO_URL,
    FullbayClient,
    FullbayClientConfig,
    LogSink,
)
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


class FullbayAPIResource(ConfigurableResource):
    """Fullbay's invoice API. Tune the pacing here: Fullbay publishes no rate limit."""

    api_key: str = Field(description="FULLBAY_API_KEY: the account's API key (secret)")
    base_url: str = Field(default=DEFAULT_BASE_URL, description="FULLBAY_API_BASE_URL")
    public_ip: str | None = Field(
        default=None, description="FULLBAY_PUBLIC_IP: the allow-listed egress IP; detected when unset"
    )
    ip_echo_url: str = Field(default=DEFAULT_IP_ECHO_URL, description="where to detect the public IP")
    token_timezone: str = Field(default="UTC", description="timezone of the token's 'today'")
    connect_timeout: float = 10.0
    read_timeout: float = Field(default=600.0, description="seconds; a busy day can take Fullbay minutes")
    max_attempts: int = 6
    retry_after_cap: float = 120.0
    total_deadline: float = 3600.0
    min_interval: float = Field(default=0.3, description="minimum seconds between two calls")
    max_in_flight: int = Field(default=2, description="calls (7-day windows) in flight at once")

    def client_config(self) -> FullbayClientConfig:
        return FullbayClientConfig(
            api_key=self.api_key,
            base_url=self.base_url,
            public_ip=self.public_ip,
            ip_echo_url=self.ip_echo_url,
            token_timezone=self.token_timezone,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            max_attempts=self.max_attempts,
            retry_after_cap=self.retry_after_cap,
            total_deadline=self.total_deadline,
            min_interval=self.min_interval,
            max_in_flight=self.max_in_flight,
        )

    def get_client(self, log: LogSink | None = None) -> FullbayClient:
        return FullbayClient(self.client_config(), logger=log)


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
    db_sslmode: str | None = Field(default=None, description="DB_SSLMODE, e.g. require on RDS")
    pool_size: int = Field(default=5, description="pooled connections per process")

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

    def get_engine(self) -> Engine:
        if self._engine is None:
            url = self.url()
            engine = make_engine(url, sslmode=self.db_sslmode, pool_size=self.pool_size)
            try:
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
