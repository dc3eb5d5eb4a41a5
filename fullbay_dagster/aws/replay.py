"""``fullbay-replay``: re-drive what the Lambda function failed to do.

Lambda never retries the function's async invocations (a launched run must not
execute twice); a failed one goes to the on-failure SQS queue as a destination
record (deploy/lambda/template.yaml). This command reads that queue, says what
failed and why, and:

- a failed **scheduled** load (EventBridge event): loads the days that event
  would have loaded: in-process through the handler's own path (default), as a
  run in a Dagster deployment (``--dagster-url``), or by invoking the function
  again with the original event (``--via-lambda``); the message is deleted only
  once those days have loaded, and left in place if the load fails again;
- a failed **launched** run (``LambdaRunLauncher``): names the run and how to
  re-execute it from the UI; the message stays unless ``--discard-launched``.

The runbook is deploy/README.md, "When a day was missed".
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO
from urllib.parse import urlsplit

from fullbay_dagster.aws.lambda_handler import PAYLOAD_KEY, is_scheduled_event
from fullbay_dagster.defs.settings import SettingsError

QUEUE_URL_ENV = "FULLBAY_FAILED_INVOCATIONS_QUEUE_URL"
SCHEDULED, LAUNCHED, UNKNOWN = "scheduled", "launched", "unknown"
REPLAY_TAG = "fullbay/replay_of"  # on runs submitted to a Dagster deployment: the SQS message id

# (the failed invocation, its first and last day) -> what loaded them (a run id); raises on failure
Loader = Callable[["FailedInvocation", tuple[str, str]], str]


class ReplayError(Exception):
    """A setting or permission that stops the command; the message names what to fix."""


@dataclass(frozen=True)
class FailedInvocation:
    """One message of the queue: the original event and why the function failed on it."""

    message_id: str
    receipt_handle: str
    event: Any
    failed_at: str | None
    condition: str | None  # RetriesExhausted, EventAgeExceeded
    error: str | None
    function_arn: str | None = None

    @property
    def kind(self) -> str:
        if isinstance(self.event, dict) and isinstance(self.event.get(PAYLOAD_KEY), dict):
            return LAUNCHED
        # Without its time, nobody can tell which days a scheduled event covered.
        return SCHEDULED if is_scheduled_event(self.event) and self.event_time else UNKNOWN

    @property
    def event_time(self) -> str | None:
        return self.event.get("time") if isinstance(self.event, dict) else None

    @property
    def run_id(self) -> str | None:
        return self.event[PAYLOAD_KEY].get("run_id") if self.kind == LAUNCHED else None


def parse_message(message: dict[str, Any]) -> FailedInvocation:
    """Read a Lambda on-failure destination record (documented shape: ``timestamp``,
    ``requestContext.condition``, ``requestPayload``, ``responsePayload``), or a bare
    event as EventBridge's dead-letter queue sends it (the reason in the message
    attributes ``ERROR_CODE``, ``ERROR_MESSAGE``, ``EXHAUSTED_RETRY_CONDITION``)."""
    attributes = message.get("Attributes", {})
    try:
        body = json.loads(message["Body"])
    except ValueError:
        body = message["Body"]
    if isinstance(body, dict) and "requestContext" in body and "requestPayload" in body:
        context = body.get("requestContext") or {}
        return FailedInvocation(
            message_id=message["MessageId"],
            receipt_handle=message["ReceiptHandle"],
            event=body["requestPayload"],
            failed_at=body.get("timestamp"),
            condition=context.get("condition"),
            error=_error_text(body.get("responsePayload"), body.get("responseContext")),
            function_arn=context.get("functionArn"),
        )
    sent = attributes.get("SentTimestamp")
    eventbridge = {name: value.get("StringValue") for name, value in message.get("MessageAttributes", {}).items()}
    code, text = eventbridge.get("ERROR_CODE"), eventbridge.get("ERROR_MESSAGE")
    return FailedInvocation(
        message_id=message["MessageId"],
        receipt_handle=message["ReceiptHandle"],
        event=body,
        failed_at=datetime.fromtimestamp(int(sent) / 1000, UTC).isoformat() if sent else None,
        condition=eventbridge.get("EXHAUSTED_RETRY_CONDITION"),
        error=": ".join(part for part in (code, text) if part) or None,
        function_arn=eventbridge.get("TARGET_ARN"),
    )


def _error_text(response: Any, response_context: Any) -> str | None:
    if isinstance(response, dict) and (response.get("errorMessage") or response.get("errorType")):
        kind, text = response.get("errorType"), response.get("errorMessage", "")
        return f"{kind}: {text}" if kind else str(text)
    if isinstance(response, str) and response:
        return response
    if isinstance(response_context, dict) and response_context.get("functionError"):
        return f"function error {response_context['functionError']}"
    return None


@dataclass
class Outcome:
    replayed: list[str] = field(default_factory=list)  # message ids deleted after their days loaded
    failed: list[str] = field(default_factory=list)  # replay failed again: left in place
    left: list[str] = field(default_factory=list)  # launched runs and unknown messages: left in place
    discarded: list[str] = field(default_factory=list)  # launched runs deleted on --discard-launched

    @property
    def complete(self) -> bool:
        return not (self.failed or self.left)


class FailedInvocationsQueue:
    """The SQS queue, read so that every message is seen once per pass: each receive
    hides a message for ``visibility_timeout`` seconds, and what is not deleted is
    made visible again at the end (so its alarm keeps counting it)."""

    def __init__(self, sqs: Any, url: str, visibility_timeout: int) -> None:
        self.sqs, self.url, self.visibility_timeout = sqs, url, visibility_timeout

    def receive(self, limit: int) -> list[FailedInvocation]:
        messages: list[dict[str, Any]] = []
        while len(messages) < limit:
            batch = self.sqs.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=min(10, limit - len(messages)),
                VisibilityTimeout=self.visibility_timeout,
                WaitTimeSeconds=1,  # long polling asks every SQS server, so an empty answer means empty
                MessageSystemAttributeNames=["SentTimestamp"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not batch:
                break
            messages.extend(batch)
        return sorted((parse_message(m) for m in messages), key=lambda f: f.failed_at or "")

    def hold(self, failure: FailedInvocation) -> None:
        """Hide the message again for the whole visibility timeout while its days load."""
        self.sqs.change_message_visibility(
            QueueUrl=self.url, ReceiptHandle=failure.receipt_handle, VisibilityTimeout=self.visibility_timeout
        )

    def delete(self, failure: FailedInvocation) -> None:
        self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=failure.receipt_handle)

    def release(self, failures: Iterable[FailedInvocation]) -> None:
        for failure in failures:
            self.sqs.change_message_visibility(
                QueueUrl=self.url, ReceiptHandle=failure.receipt_handle, VisibilityTimeout=0
            )


def replay(
    queue: FailedInvocationsQueue,
    days_of: Callable[[str | None], tuple[str, str] | None],
    load: Loader | None,
    *,
    discard_launched: bool = False,
    dagster_url: str | None = None,
    max_messages: int = 100,
    out: TextIO | None = None,
) -> Outcome:
    """One pass over the queue. ``load`` None is the dry run: list, change nothing."""
    out = out or sys.stdout
    failures = queue.receive(max_messages)
    outcome = Outcome()
    kept: list[FailedInvocation] = []
    loaded: dict[tuple[str, str], str] = {}  # a span loaded in this pass is not loaded twice
    print(f"{len(failures)} failed invocation(s) in {queue.url}", file=out)
    try:
        for number, failure in enumerate(failures, 1):
            print(f"[{number}] {describe(failure)}", file=out)
            if failure.kind == LAUNCHED:
                print(_launched_advice(failure, dagster_url), file=out)
                if discard_launched and load is not None:
                    queue.delete(failure)
                    outcome.discarded.append(failure.message_id)
                    print("    discarded (--discard-launched)", file=out)
                else:
                    kept.append(failure)
                    outcome.left.append(failure.message_id)
                continue
            if failure.kind == UNKNOWN:
                print("    not a scheduled event nor a launched run: left in the queue for a human", file=out)
                kept.append(failure)
                outcome.left.append(failure.message_id)
                continue
            try:
                span = days_of(failure.event_time)
            except ValueError as exc:  # a time that does not parse: nothing to replay safely
                print(f"    cannot tell its days ({exc}): left in the queue for a human", file=out)
                kept.append(failure)
                outcome.left.append(failure.message_id)
                continue
            if span is None:
                print("    that event had no complete day to load (before FULLBAY_START_DATE)", file=out)
            else:
                print(f"    days {span[0]}..{span[1]}", file=out)
            if load is None:
                kept.append(failure)
                continue
            try:
                queue.hold(failure)
                if span is not None and span not in loaded:
                    loaded[span] = load(failure, span)
                    print(f"    loaded by {loaded[span]}", file=out)
                elif span is not None:
                    print(f"    already loaded in this pass by {loaded[span]}", file=out)
            except Exception as exc:  # any failure of the load: the message is the record, keep it
                print(f"    replay FAILED, message left in the queue: {type(exc).__name__}: {exc}", file=out)
                kept.append(failure)
                outcome.failed.append(failure.message_id)
                continue
            queue.delete(failure)
            outcome.replayed.append(failure.message_id)
            print("    deleted from the queue", file=out)
    finally:
        queue.release(kept)
    if load is not None:
        print(
            f"replayed {len(outcome.replayed)}, failed again {len(outcome.failed)}, "
            f"left for a human {len(outcome.left)}, discarded {len(outcome.discarded)}",
            file=out,
        )
    return outcome


def describe(failure: FailedInvocation) -> str:
    when = failure.failed_at or "unknown time"
    why = failure.error or "no error recorded"
    condition = f" ({failure.condition})" if failure.condition else ""
    if failure.kind == SCHEDULED:
        return f"scheduled load of {failure.event_time or 'unknown time'} failed at {when}{condition}: {why}"
    if failure.kind == LAUNCHED:
        return f"launched Dagster run {failure.run_id} failed in Lambda at {when}{condition}: {why}"
    return f"unrecognised event failed at {when}{condition}: {why}; event: {json.dumps(failure.event)[:300]}"


def _launched_advice(failure: FailedInvocation, dagster_url: str | None) -> str:
    where = f"{dagster_url.rstrip('/')}/runs/{failure.run_id}" if dagster_url else f"Runs -> {failure.run_id}"
    return (
        "    not re-executed here (a run must not execute twice): run monitoring fails it in Dagster;\n"
        f"    re-execute it from the UI if its days are still missing: {where} -> Re-execute.\n"
        "    Its message stays in the queue until you pass --discard-launched."
    )


def in_process_loader() -> tuple[Callable[[str | None], tuple[str, str] | None], Loader]:
    """The handler's own path: the days an event covered, loaded by one in-process run."""
    from fullbay_dagster.aws.lambda_handler import daily_job, days_for_event_time, materialize_days

    job, repull_days = daily_job()

    def load(failure: FailedInvocation, span: tuple[str, str]) -> str:
        return f"in-process run {materialize_days(job, *span)['run_id']}"

    return (lambda event_time: days_for_event_time(job, repull_days, event_time)), load


def dagster_loader(url: str, timeout_seconds: int, poll_seconds: float = 5.0) -> Loader:
    """Submit the days as one run of the daily job to a Dagster deployment (the run the
    schedule would have made, sent to ECS) and wait for it to succeed."""
    from dagster import DagsterRunStatus
    from dagster_graphql import DagsterGraphQLClient

    from fullbay_dagster.aws.launchers import LAUNCHER_TAG
    from fullbay_dagster.defs.definitions import JOB_NAME
    from fullbay_dagster.defs.schedules import range_tags

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ReplayError(f"--dagster-url {url!r}: give the webserver's URL, e.g. http://127.0.0.1:3000")
    client = DagsterGraphQLClient(
        parts.hostname, port_number=parts.port, use_https=parts.scheme == "https", path_prefix=parts.path.rstrip("/")
    )

    def load(failure: FailedInvocation, span: tuple[str, str]) -> str:
        tags = {**range_tags(*span), LAUNCHER_TAG: "ecs", REPLAY_TAG: failure.message_id}
        run_id = client.submit_job_execution(JOB_NAME, tags=tags)
        deadline = time.monotonic() + timeout_seconds
        while True:
            status = client.get_run_status(run_id)
            if status == DagsterRunStatus.SUCCESS:
                return f"Dagster run {run_id}"
            if status in (DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED):
                raise RuntimeError(f"Dagster run {run_id} ended {status.value}; see it in the UI")
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"Dagster run {run_id} still {status.value} after {timeout_seconds}s; "
                    "replay again once it has finished"
                )
            time.sleep(poll_seconds)

    return load


def lambda_loader(function: str | None, region: str) -> Loader:
    """Invoke the function again, synchronously, with the original event: it loads the
    days it would have loaded then, in the network and with the secrets it always has."""
    import boto3
    from botocore.config import Config

    from fullbay_dagster.aws.launchers import LAMBDA_MAX_SECONDS

    # Wait out the longest invocation, and never retry: a retried invoke would load twice.
    config = Config(read_timeout=LAMBDA_MAX_SECONDS + 60, retries={"total_max_attempts": 1})
    client = boto3.client("lambda", region_name=region, config=config)

    def load(failure: FailedInvocation, span: tuple[str, str]) -> str:
        name = function or failure.function_arn
        if not name:
            raise ReplayError("the message names no function: pass --via-lambda FUNCTION")
        response = client.invoke(
            FunctionName=name, InvocationType="RequestResponse", Payload=json.dumps(failure.event).encode()
        )
        answer = response["Payload"].read().decode(errors="replace")
        if response.get("FunctionError"):
            raise RuntimeError(f"{name} failed again ({response['FunctionError']}): {answer[:500]}")
        return f"Lambda function {name} (request {response['ResponseMetadata']['RequestId']})"

    return load


def queue_settings(queue_url: str | None) -> tuple[str, str]:
    url = queue_url or os.environ.get(QUEUE_URL_ENV)
    if not url:
        raise ReplayError(
            f"Set {QUEUE_URL_ENV} (the Lambda stack's output FailedInvocationsQueueUrl) or pass --queue-url"
        )
    in_url = re.match(r"https?://sqs[.-]([a-z0-9-]+)\.amazonaws\.com", url)
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or (in_url and in_url.group(1))
    if not region:
        raise ReplayError("Set AWS_REGION to the region of the queue (e.g. us-east-1)")
    return url, region


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fullbay-replay",
        description="Show and re-drive the Fullbay Lambda function's failed invocations (its on-failure SQS queue).",
    )
    parser.add_argument("--queue-url", help=f"the queue (default: ${QUEUE_URL_ENV})")
    parser.add_argument("--dry-run", "--list", action="store_true", help="only show what failed and why")
    parser.add_argument(
        "--dagster-url",
        help="a Dagster webserver (e.g. http://127.0.0.1:3000): load the days as a run there instead of in-process",
    )
    parser.add_argument(
        "--via-lambda",
        nargs="?",
        const="",
        metavar="FUNCTION",
        help="re-invoke the function (default: the one that failed) with the original event, and wait for it",
    )
    parser.add_argument(
        "--discard-launched",
        action="store_true",
        help="delete the messages of failed launched runs (after you dealt with them)",
    )
    parser.add_argument("--max-messages", type=int, default=100)
    parser.add_argument(
        "--visibility-timeout",
        type=int,
        default=900,
        help="seconds a message stays hidden while its days load (default 900)",
    )
    parser.add_argument("--run-timeout", type=int, default=3600, help="with --dagster-url: seconds to wait for a run")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Exit 0 when every failure was replayed (or, with --dry-run, listed); 1 when
    something is left in the queue; 2 when a setting or permission is missing."""
    args = build_parser().parse_args(argv)
    try:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        url, region = queue_settings(args.queue_url)
        visibility = args.visibility_timeout
        if args.dry_run:
            visibility = 30
        elif args.dagster_url:  # hidden for as long as we wait for the run (SQS allows 12 hours at most)
            visibility = min(43200, max(visibility, args.run_timeout + 60))
        queue = FailedInvocationsQueue(boto3.client("sqs", region_name=region), url, visibility)
        days_of, load = in_process_loader()
        if args.dagster_url and args.via_lambda is not None:
            raise ReplayError("choose one of --dagster-url and --via-lambda")
        if args.dagster_url:
            load = dagster_loader(args.dagster_url, args.run_timeout)
        elif args.via_lambda is not None:
            load = lambda_loader(args.via_lambda or None, region)
        try:
            outcome = replay(
                queue,
                days_of,
                None if args.dry_run else load,
                discard_launched=args.discard_launched,
                dagster_url=args.dagster_url,
                max_messages=args.max_messages,
            )
        except NoCredentialsError:
            raise ReplayError(
                "No AWS credentials: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
            ) from None
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if "NonExistentQueue" in code or "QueueDoesNotExist" in code:
                raise ReplayError(f"No queue at {url} in {region}: check {QUEUE_URL_ENV} and AWS_REGION") from None
            if "AccessDenied" in code:
                raise ReplayError(f"Access denied on {url}: attach the Lambda stack's ReplayPolicyArn") from None
            raise ReplayError(f"SQS refused: {code}: {exc}") from None
        except BotoCoreError as exc:
            raise ReplayError(f"Cannot reach SQS for {url}: {exc}") from None
    except (ReplayError, SettingsError) as exc:
        print(f"fullbay-replay: {exc}", file=sys.stderr)
        return 2
    return 0 if args.dry_run or outcome.complete else 1


if __name__ == "__main__":
    sys.exit(main())
