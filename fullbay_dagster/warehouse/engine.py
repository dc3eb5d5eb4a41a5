"""Database URLs and engines.

Users and the RDS docs write ``postgresql://user@host:5432/db``; SQLAlchemy 2.1
maps that to psycopg 3, which this project does not install, so plain PostgreSQL
URLs are routed to psycopg2 here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError

PG_DRIVER = "postgresql+psycopg2"
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


ENCODING_HINT = (
    "Percent-encode special characters in the user name and password "
    "(@ -> %40, / -> %2F, # -> %23, % -> %25, : -> %3A, ? -> %3F; e.g. "
    "python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=\"\"))' 'PASSWORD')"
)
# A percent sign that does not start a %XX escape: a raw % in the password.
_BARE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


class WarehouseConfigError(ValueError):
    """The database settings cannot work; the message says which one."""


def _ambiguous_character(url: str) -> str | None:
    """The raw character that would make ``url`` parse other than its writer meant.

    SQLAlchemy reads ``user:p@ss@host`` as host ``ss@host``, silently decodes ``%41`` in
    a password, and other URL parsers (libpq, Dagster's storage) end the host at a ``/``
    or ``#``: any error that followed would print pieces of the password as a host or a
    database. Checked on the text, before parsing; SQLite paths are left alone.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.split("+")[0] == "sqlite":
        return None
    if "#" in rest:
        return "#"
    if _BARE_PERCENT.search(rest):
        return "%"
    authority, _, after = rest.partition("/")
    if authority.count("@") > 1:
        return "@"
    if "@" not in authority and "@" in after:
        return "/"  # user:pa/ss@host/db: a / before the @ ends the authority for URL parsers
    return None


def normalise_url(url: str | URL) -> URL:
    """Never puts any part of the URL after the scheme in an error (it may hold the password)."""
    if isinstance(url, str):
        bad = _ambiguous_character(url.strip())
        if bad is not None:
            raise WarehouseConfigError(
                f"DATABASE_URL has a raw {bad!r} after the scheme that would be read as part of the "
                f"URL's structure (most often it is in the password), so it would not connect where "
                f"you meant. {ENCODING_HINT}."
            )
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise WarehouseConfigError(
            "DATABASE_URL is not a valid database URL (expected e.g. postgresql://user:pass@host:5432/db). "
            f"{ENCODING_HINT}."
        ) from None
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername=PG_DRIVER)
    if not parsed.drivername.startswith(("postgresql", "sqlite")):
        raise WarehouseConfigError(
            f"DATABASE_URL names an unsupported database {parsed.drivername!r}: "
            "use PostgreSQL (postgresql://...) or SQLite (sqlite:///...)"
        )
    return parsed


def url_from_parts(host: str, port: int, name: str, user: str, password: str | None) -> URL:
    return URL.create(PG_DRIVER, username=user, password=password, host=host, port=port, database=name)


def describe(url: URL) -> str:
    """Host, port and database, never the password: safe for logs and errors."""
    if url.get_backend_name() == "sqlite":
        return f"sqlite {url.database or ':memory:'}"
    return f"postgresql {url.host}:{url.port or 5432}/{url.database}"


def make_engine(
    url: str | URL,
    *,
    sslmode: str | None = None,
    pool_size: int = 5,
    max_overflow: int = 5,
    connect_timeout: int = 10,
    application_name: str = "fullbay-dagster",
    password: Callable[[], str] | None = None,
) -> Engine:
    """``password``, when given, is asked for each new connection (a rotated secret,
    a short-lived RDS IAM token) instead of a password fixed in the URL."""
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed, connect_args={"timeout": 60})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if sslmode is not None and sslmode not in SSL_MODES:
        raise WarehouseConfigError(f"DB_SSLMODE must be one of {', '.join(SSL_MODES)}, got {sslmode!r}")
    connect_args: dict[str, Any] = {"connect_timeout": connect_timeout, "application_name": application_name}
    if sslmode:
        connect_args["sslmode"] = sslmode
    engine = create_engine(
        parsed,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=True,  # RDS drops idle connections; test before use.
        pool_recycle=1800,  # IAM tokens live 15 minutes; pooled connections outlive them safely
        connect_args=connect_args,
    )
    event.listen(engine, "connect", _postgres_session)
    if password is not None:
        source = password

        @event.listens_for(engine, "do_connect")
        def _fresh_password(dialect: Any, record: Any, cargs: Any, cparams: dict[str, Any]) -> None:
            cparams["password"] = source()

    return engine


def _postgres_session(dbapi_connection: Any, _record: Any) -> None:
    """lz4 for what this session TOASTs (PostgreSQL >= 14 built with lz4, as RDS and
    Debian's are): the raw JSON of an invoice is several KiB, and compressing it with
    the default pglz took a quarter of a run's time; lz4 needs about a third less for
    the same size. Columns keep their declared method; values already stored are
    read either way. Servers without lz4 keep their default."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SET default_toast_compression = 'lz4'")
        dbapi_connection.commit()
    except Exception:  # older server or no lz4: nothing to gain, nothing lost
        dbapi_connection.rollback()
    finally:
        cursor.close()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()
