"""CloudWatch custom metrics and SNS alerts, through boto3.

Imported only where a deployed run publishes; locally the alerts resource is
disabled and nothing here is called.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import boto3

METRIC_UNITS = {"DurationSeconds": "Seconds"}


def put_metrics(
    namespace: str,
    values: Mapping[str, float],
    dimensions: Mapping[str, str],
    *,
    region_name: str | None = None,
    client: Any = None,
) -> None:
    client = client or boto3.client("cloudwatch", region_name=region_name)
    now = datetime.now(UTC)
    data = [
        {
            "MetricName": name,
            "Dimensions": [{"Name": key, "Value": value} for key, value in dimensions.items()],
            "Timestamp": now,
            "Value": float(value),
            "Unit": METRIC_UNITS.get(name, "Count"),
        }
        for name, value in values.items()
    ]
    for start in range(0, len(data), 1000):  # PutMetricData takes at most 1000 values a call
        client.put_metric_data(Namespace=namespace, MetricData=data[start : start + 1000])


def publish_alert(topic_arn: str, subject: str, message: str, *, region_name: str | None = None) -> str:
    client = boto3.client("sns", region_name=region_name)
    # SNS subjects: at most 100 printable ASCII characters, no newlines.
    clean_subject = "".join(c if 32 <= ord(c) < 127 else " " for c in subject)[:100]
    response = client.publish(TopicArn=topic_arn, Subject=clean_subject, Message=message[:200_000])
    return str(response["MessageId"])
