"""Credentials from Secrets Manager (moto): loading, caching, clear errors, rotation."""

from __future__ import annotations

import json
import os
from datetime import date
from typing import Any

import pytest
from sqlalchemy import event, text

from fullbay_dagster.aws import lambda_handler
from fullbay_dagster.aws.rds import rds_iam_token_source
from fullbay_dagster.aws.secrets import SecretError, SecretsProvider, forget_cached_secrets
from fullbay_dagster.defs.resources import FullbayAPIResource, WarehouseResource
from fullbay_dagster.fullbay.simulator import Simulator
from fullbay_dagster.warehouse.engine import make_engine, normalise_url
from fullbay_dagster_tests.aws.conftest import REGION, SECRET_NAME, put_secret
from fullbay_dagster_tests.conftest import TEST_KEY

pytestmark = pytest.mark.usefixtures("aws")
VALUE = "Sup3r-secret-value-9f8e7d"


def test_fields_are_read_and_cached() -> None:
    put_secret({"fullbay_api_key": VALUE, "db_password": "pw-1"})
    provider = SecretsProvider(SECRET_NAME, region_name=REGION)
    assert provider.get("fullbay_api_key") == VALUE
    assert provider.get("db_password") == "pw-1"
    assert provider.reads == 1


def test_the_cache_expires_after_its_ttl() -> None:
    put_secret({"fullbay_api_key": "old"})
    provider = SecretsProvider(SECRET_NAME, region_name=REGION, ttl=0)
    assert provider.get("fullbay_api_key") == "old"
    put_secret({"fullbay_api_key": "new"})
    assert provider.get("fullbay_api_key") == "new"
    assert provider.reads == 2


def test_refresh_reads_a_rotated_value_at_once() -> None:
    put_secret({"fullbay_api_key": "old"})
    provider = SecretsProvider(SECRET_NAME, region_name=REGION)
    assert provider.get("fullbay_api_key") == "old"
    put_secret({"fullbay_api_key": "new"})
    assert provider.get("fullbay_api_key") == "old"  # still cached
    assert provider.refresh("fullbay_api_key") == "new"


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (None, "fullbay_api_key", r"Cannot read secret 'fullbay/prod' .*ResourceNotFoundException"),
        ({"db_password": VALUE}, "fullbay_api_key", r"'fullbay/prod' has no non-empty string field 'fullbay_api_key'"),
        ({"fullbay_api_key": ""}, "fullbay_api_key", r"no non-empty string field 'fullbay_api_key'"),
        ({"fullbay_api_key": 12345}, "fullbay_api_key", r"no non-empty string field 'fullbay_api_key'"),
        (f"fullbay_api_key={VALUE}", "fullbay_api_key", r"'fullbay/prod' is not a JSON object"),
        (json.dumps([VALUE]), "fullbay_api_key", r"'fullbay/prod' is JSON but not an object"),
    ],
)
def test_bad_secrets_name_the_secret_and_field_never_the_value(body: Any, field: str, message: str) -> None:
    if body is not None:
        put_secret(body)
    with pytest.raises(SecretError, match=message) as caught:
        SecretsProvider(SECRET_NAME, region_name=REGION).get(field)
    assert VALUE not in str(caught.value)
    assert caught.value.__cause__ is None


def test_the_api_resource_takes_the_key_from_the_secret(simulator: Simulator) -> None:
    put_secret({"fullbay_api_key": TEST_KEY})
    resource = FullbayAPIResource(
        secret_name=SECRET_NAME, aws_region=REGION, base_url=simulator.url, public_ip="127.0.0.1"
    )
    client = resource.get_client()
    assert len(list(client.iter_invoices(date(2025, 3, 12), date(2025, 3, 12)))) == 12


def test_a_rotated_api_key_is_read_again_once_when_fullbay_rejects_the_old_one(simulator: Simulator) -> None:
    put_secret({"fullbay_api_key": "key-before-rotation"}, name="fullbay/rotating")
    resource = FullbayAPIResource(
        secret_name="fullbay/rotating",
        aws_region=REGION,
        base_url=simulator.url,
        public_ip="127.0.0.1",
    )
    client = resource.get_client()  # caches the old key
    put_secret({"fullbay_api_key": TEST_KEY}, name="fullbay/rotating")  # rotation happens
    records = list(client.iter_invoices(date(2025, 3, 12), date(2025, 3, 12)))
    assert len(records) == 12
    # one rejected request, then the three pages with the new key
    assert len(simulator.requests()) == 1 + -(-12 // 5)


def test_the_rotated_key_is_not_retried_forever(simulator: Simulator) -> None:
    from fullbay_dagster.fullbay.errors import FullbayAuthError

    put_secret({"fullbay_api_key": "wrong-key-a"}, name="fullbay/wrong")
    resource = FullbayAPIResource(
        secret_name="fullbay/wrong", aws_region=REGION, base_url=simulator.url, public_ip="127.0.0.1"
    )
    client = resource.get_client()
    with pytest.raises(FullbayAuthError):
        list(client.iter_invoices(date(2025, 3, 12), date(2025, 3, 12)))
    assert len(simulator.requests()) == 1  # the re-read gave the same key: no second attempt


@pytest.mark.parametrize("injected", [None, "injected-at-task-start"])
def test_the_database_password_comes_from_the_secret_on_each_new_connection(pg_url: str, injected: str | None) -> None:
    """Also when ECS injected DB_PASSWORD at task start: a rotation since must be seen."""
    put_secret({"db_password": "pw-from-secret"})
    seen: list[str | None] = []
    database_url = normalise_url(pg_url).set(password=injected).render_as_string(hide_password=False)
    resource = WarehouseResource(database_url=database_url, secret_name=SECRET_NAME, aws_region=REGION)
    url = normalise_url(database_url)
    password, _ = resource._password_source(url)
    assert password is not None
    engine = make_engine(url, password=password)
    # Registered after the project's own listener: sees the parameters psycopg2 gets.
    event.listen(engine, "do_connect", lambda d, r, cargs, cparams: seen.append(cparams.get("password")))
    with engine.connect() as connection:
        assert connection.execute(text("SELECT 1")).scalar_one() == 1
    engine.dispose()
    assert seen == ["pw-from-secret"]


def test_rds_iam_tokens_are_signed_for_the_host_port_and_user() -> None:
    url = normalise_url("postgresql://fullbay_iam@db.abc123.us-east-1.rds.amazonaws.com:5432/fullbay")
    token = rds_iam_token_source(url, REGION)()
    assert token.startswith("db.abc123.us-east-1.rds.amazonaws.com:5432/?Action=connect&DBUser=fullbay_iam")
    assert "X-Amz-Signature=" in token


def test_a_warm_lambda_container_reads_the_storage_password_again_after_a_rotation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SECRETS_MANAGER_SECRET_NAME", SECRET_NAME)
    monkeypatch.delenv("DAGSTER_PG_PASSWORD", raising=False)
    monkeypatch.setattr(lambda_handler, "_STORAGE_PASSWORD_SET_HERE", False)
    put_secret({"db_password": "before-rotation"})
    lambda_handler._export_storage_password()
    assert os.environ["DAGSTER_PG_PASSWORD"] == "before-rotation"
    put_secret({"db_password": "after-rotation"})
    forget_cached_secrets()  # as when the cache's five minutes have passed
    lambda_handler._export_storage_password()  # the next invocation of the same container
    assert os.environ["DAGSTER_PG_PASSWORD"] == "after-rotation"
    # A password the function was configured with is its operator's choice.
    monkeypatch.setattr(lambda_handler, "_STORAGE_PASSWORD_SET_HERE", False)
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "configured")
    lambda_handler._export_storage_password()
    assert os.environ["DAGSTER_PG_PASSWORD"] == "configured"
