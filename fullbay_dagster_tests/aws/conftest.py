"""AWS fixtures: moto's threaded server, so that subprocesses (a run worker started
by the Lambda handler) reach the same fake AWS through AWS_ENDPOINT_URL. Lambda
runs without Docker: invocations are accepted, not executed."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

from fullbay_dagster.aws.secrets import forget_cached_secrets

REGION = "us-east-1"
SECRET_NAME = "fullbay/prod"


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture()
def aws(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A clean fake AWS account for one test; boto3 everywhere (this process and its
    children) talks to it."""
    requests.post(f"{moto_server}/moto-api/reset", timeout=10).raise_for_status()
    requests.post(f"{moto_server}/moto-api/config", json={"lambda": {"use_docker": False}}, timeout=10)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": moto_server,
    }.items():
        monkeypatch.setenv(name, value)
    forget_cached_secrets()
    yield moto_server


def put_secret(values: dict[str, object] | str, name: str = SECRET_NAME) -> str:
    client = boto3.client("secretsmanager", region_name=REGION)
    body = values if isinstance(values, str) else json.dumps(values)
    try:
        return str(client.create_secret(Name=name, SecretString=body)["ARN"])
    except client.exceptions.ResourceExistsException:
        return str(client.put_secret_value(SecretId=name, SecretString=body)["ARN"])


def create_run_function(name: str = "fullbay-run") -> str:
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(
        RoleName=f"{name}-role",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ],
            }
        ),
    )["Role"]["Arn"]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("handler.py", Path(__file__).read_text())  # moto needs some code; it never runs it
    function = boto3.client("lambda", region_name=REGION).create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role,
        Handler="fullbay_dagster.aws.lambda_handler.handler",
        Code={"ZipFile": archive.getvalue()},
        Timeout=900,
    )
    return str(function["FunctionArn"])
