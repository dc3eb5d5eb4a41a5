"""RDS IAM authentication: a short-lived token from boto3 in place of a password."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import URL


def rds_iam_token_source(url: URL, region_name: str | None) -> Callable[[], str]:
    """Tokens are valid 15 minutes and cheap to make (signed locally), so each new
    connection gets a fresh one; established connections are not affected by expiry."""
    import boto3  # deferred: only deployed runs use IAM auth

    client = boto3.client("rds", region_name=region_name)
    host, port, user = url.host, url.port or 5432, url.username
    if not host or not user:
        raise ValueError("DB_IAM_AUTH needs DB_HOST and DB_USER (or a DATABASE_URL with both)")

    def token() -> str:
        return str(client.generate_db_auth_token(DBHostname=host, Port=port, DBUsername=user))

    return token
