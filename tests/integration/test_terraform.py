"""``terraform apply`` + ``destroy`` of terraform/envs/example against moto's server on loopback.

Self-contained (no conftest fixtures): starts its own moto server on a free 127.0.0.1 port, copies
terraform/ to a temporary directory (so no lock file, state or plugin data lands in the tree),
installs the AWS provider from the local filesystem mirror (terraform/scripts/tf-cliconfig.sh),
applies the example with ``aws_endpoint_url`` pointing at moto and ``emulator_mode = true``, checks
what was created through boto3, then destroys it and checks it is gone.

``emulator_mode`` skips exactly three resources moto cannot manage (the DLQ redrive-allow policy
and the workers' Application Auto Scaling target and policy); a plan with ``emulator_mode = false``
after the apply proves those three are the only difference.

Images: moto does not validate a Lambda ``ImageUri`` against its ECR (MOTO_LAMBDA_STUB_ECR
defaults to true), so the functions are created from tags that were never pushed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.harness.moto import MotoServer

pytestmark = [pytest.mark.terraform, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
IMAGE_TAG = "test-0001"
ACCOUNT = "123456789012"  # moto's default account
INVOKABLE_LAMBDA = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:fetch-data"
DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",  # moto's dummy credentials
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}

EXPECTED_ROUTES = {
    "POST /tasks",
    "GET /tasks",
    "GET /tasks/{id}",
    "POST /tasks/{id}/cancel",
    "POST /tasks/batch",
    "GET /workflows",
    "GET /workflows/{name}",
    "PUT /workflows/{name}",
    "DELETE /workflows/{name}",
    "POST /workflows/{name}/{action}",
    "GET /workflows/{name}/executions",
    "GET /workflows/{name}/preview",
    "POST /webhooks/{source}",
    "GET /health",
    "GET /version",
    "GET /openapi.json",
    "GET /docs",
}

# Attributes moto does not store, so a second plan shows them as in-place updates: Performance
# Insights on the instance, enable_ecs_managed_tags on the service, and the redrive policy's JSON
# whitespace. Emulator fidelity, not configuration drift; anything else updated fails the test.
MOTO_DRIFT = {
    "module.database.aws_db_instance.this",
    "module.queue.aws_sqs_queue.this",
    "module.workers.aws_ecs_service.this",
}

# The resources emulator_mode skips, and nothing else.
EMULATOR_GUARDED = {
    "module.queue.aws_sqs_queue_redrive_allow_policy.dlq[0]",
    "module.workers.aws_appautoscaling_target.this[0]",
    "module.workers.aws_appautoscaling_policy.backlog[0]",
}


# --------------------------------------------------------------------------- moto


@pytest.fixture
def moto_endpoint(tmp_path: Path) -> Iterator[str]:
    extra = {**DUMMY_CREDENTIALS, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}
    with MotoServer(extra_env=extra, log_dir=tmp_path) as server:
        yield server.url


# --------------------------------------------------------------------------- terraform


class Terraform:
    """Runs terraform in a copy of terraform/envs/example; every command's output goes to a log."""

    def __init__(self, workdir: Path, endpoint: str) -> None:
        self.root = workdir / "terraform" / "envs" / "example"
        self.logs = workdir / "logs"
        self.logs.mkdir()
        cli_config = workdir / "terraformrc"
        subprocess.run(
            ["sh", str(REPO / "terraform" / "scripts" / "tf-cliconfig.sh"), str(cli_config)],
            check=True,
            capture_output=True,
        )
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TF_"))},
            **DUMMY_CREDENTIALS,
            "AWS_EC2_METADATA_DISABLED": "true",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "TF_CLI_CONFIG_FILE": str(cli_config),
            "TF_DATA_DIR": str(workdir / "tf-data"),
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "CHECKPOINT_DISABLE": "1",
        }
        self.var_file = workdir / "emulator.tfvars.json"
        self.var_file.write_text(
            json.dumps(
                {
                    "region": REGION,
                    "aws_endpoint_url": endpoint,
                    "emulator_mode": True,
                    "image_tag": IMAGE_TAG,
                    "deletion_protection": False,
                    "secret_recovery_window_days": 0,
                    "kms_deletion_window_days": 7,
                    "db_multi_az": False,
                    "log_retention_days": 30,
                    "lambda_function_arns": [INVOKABLE_LAMBDA],
                    "alarm_email_addresses": ["oncall@example.com"],
                }
            )
        )

    def run(
        self, name: str, *args: str, ok_codes: tuple[int, ...] = (0,)
    ) -> tuple[int, str, float]:
        started = time.monotonic()
        result = subprocess.run(
            ["terraform", f"-chdir={self.root}", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        seconds = time.monotonic() - started
        output = result.stdout + result.stderr
        (self.logs / f"{name}.log").write_text(output)
        if result.returncode not in ok_codes:
            pytest.fail(f"terraform {name} exited {result.returncode}:\n{output[-6000:]}")
        return result.returncode, result.stdout, seconds

    def apply(self) -> float:
        return self.run(
            "apply", "apply", "-auto-approve", "-no-color", f"-var-file={self.var_file}"
        )[2]

    def destroy(self) -> float:
        return self.run(
            "destroy", "destroy", "-auto-approve", "-no-color", f"-var-file={self.var_file}"
        )[2]


def _client(service: str, endpoint: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


# --------------------------------------------------------------------------- checks


def _check_queues(endpoint: str, outputs: dict[str, Any]) -> None:
    sqs = _client("sqs", endpoint)
    queue = sqs.get_queue_attributes(QueueUrl=outputs["queue_url"], AttributeNames=["All"])
    dlq = sqs.get_queue_attributes(QueueUrl=outputs["dlq_url"], AttributeNames=["All"])
    queue, dlq = queue["Attributes"], dlq["Attributes"]
    redrive = json.loads(queue["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == dlq["QueueArn"]
    assert int(redrive["maxReceiveCount"]) == 5
    assert queue["VisibilityTimeout"] == "3900"  # max_step_timeout_seconds 3600 + 300
    assert queue["MessageRetentionPeriod"] == "345600"
    assert dlq["MessageRetentionPeriod"] == "1209600"
    assert queue["KmsMasterKeyId"].startswith("arn:aws:kms:")
    assert dlq["KmsMasterKeyId"] == queue["KmsMasterKeyId"]


def _check_lambdas(endpoint: str, outputs: dict[str, Any]) -> dict[str, Any]:
    lam = _client("lambda", endpoint)
    ecr = outputs["ecr_repository_urls"]
    functions = {}
    for name, deployable, handler in (
        (outputs["scheduler_function_name"], "scheduler", "scheduler.handler.handler"),
        (outputs["api_function_name"], "api", "api.handler.handler"),
    ):
        function = lam.get_function(FunctionName=name)
        config = function["Configuration"]
        assert config["PackageType"] == "Image"
        assert function["Code"]["ImageUri"] == f"{ecr[deployable]}:{IMAGE_TAG}"
        assert config["ImageConfigResponse"]["ImageConfig"]["Command"] == [handler]
        assert config["TracingConfig"]["Mode"] == "Active"
        assert len(config["VpcConfig"]["SubnetIds"]) == 2
        env = config["Environment"]["Variables"]
        assert env["CONVEYOR_DATABASE_URL"] == outputs["database_url_secret_arn"]
        assert env["CONVEYOR_QUEUE_URL"] == outputs["queue_url"]
        assert env["CONVEYOR_DLQ_URL"] == outputs["dlq_url"]
        assert env["CONVEYOR_QUEUE_NAME"] == "conveyor-executions"
        assert env["CONVEYOR_REGION"] == REGION
        assert env["CONVEYOR_LOG_FORMAT"] == "json"
        assert env["CONVEYOR_LOG_LEVEL"] == "INFO"
        functions[deployable] = function

    scheduler = functions["scheduler"]
    scheduler_env = scheduler["Configuration"]["Environment"]["Variables"]
    assert scheduler_env["CONVEYOR_ECS_CLUSTER"] == outputs["ecs_cluster"]
    assert scheduler_env["CONVEYOR_ECS_SERVICE"] == outputs["ecs_service"]
    assert scheduler["Configuration"]["Timeout"] == 60
    assert scheduler["Concurrency"]["ReservedConcurrentExecutions"] == 1

    api = functions["api"]
    api_env = api["Configuration"]["Environment"]["Variables"]
    assert api_env["CONVEYOR_WEBHOOK_SECRETS"] == outputs["webhook_secrets_secret_arn"]
    assert api["Configuration"]["Timeout"] == 29
    assert api["Concurrency"]["ReservedConcurrentExecutions"] == 50
    return functions


def _check_schedule(endpoint: str, scheduler_arn: str) -> None:
    events = _client("events", endpoint)
    rule = events.describe_rule(Name="conveyor-scheduler-tick")
    assert rule["ScheduleExpression"] == "rate(1 minute)"
    assert rule["State"] == "ENABLED"
    targets = events.list_targets_by_rule(Rule="conveyor-scheduler-tick")["Targets"]
    assert [t["Arn"] for t in targets] == [scheduler_arn]


def _check_workers(endpoint: str, outputs: dict[str, Any]) -> None:
    ecs = _client("ecs", endpoint)
    services = ecs.describe_services(
        cluster=outputs["ecs_cluster"], services=[outputs["ecs_service"]]
    )
    (service,) = services["services"]
    assert service["desiredCount"] == 2
    assert service["launchType"] == "FARGATE"
    assert service["networkConfiguration"]["awsvpcConfiguration"]["assignPublicIp"] == "DISABLED"

    task = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
    assert task["requiresCompatibilities"] == ["FARGATE"]
    (container,) = task["containerDefinitions"]
    assert container["image"] == f"{outputs['ecr_repository_urls']['worker']}:{IMAGE_TAG}"
    assert container["command"] == ["conveyor", "worker"]
    assert container["stopTimeout"] == 120
    assert container["readonlyRootFilesystem"] is True
    assert container["healthCheck"]["command"] == ["CMD", "conveyor", "worker", "--check"]
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert env["CONVEYOR_QUEUE_URL"] == outputs["queue_url"]
    assert env["CONVEYOR_DATABASE_URL"] == outputs["database_url_secret_arn"]
    assert env["CONVEYOR_ANTHROPIC_API_KEY"] == outputs["anthropic_api_key_secret_arn"]
    assert env["CONVEYOR_VISIBILITY_TIMEOUT_SECONDS"] == "3900"

    # The task role may invoke exactly the configured function (and its versions/aliases).
    iam = _client("iam", endpoint)
    role_name = task["taskRoleArn"].rsplit("/", 1)[1]
    document = iam.get_role_policy(RoleName=role_name, PolicyName="worker")["PolicyDocument"]
    if isinstance(document, str):
        document = json.loads(urllib.parse.unquote(document))
    invoke = [s for s in document["Statement"] if s.get("Sid") == "InvokeWorkflowLambdas"]
    assert len(invoke) == 1
    assert sorted(invoke[0]["Resource"]) == sorted([INVOKABLE_LAMBDA, f"{INVOKABLE_LAMBDA}:*"])
    for statement in document["Statement"]:
        assert statement["Action"] != "*"


def _check_api(endpoint: str, outputs: dict[str, Any]) -> None:
    apigw = _client("apigatewayv2", endpoint)
    (api,) = [a for a in apigw.get_apis()["Items"] if a["Name"] == "conveyor-api"]
    assert api["ProtocolType"] == "HTTP"
    routes = apigw.get_routes(ApiId=api["ApiId"])["Items"]
    assert {r["RouteKey"] for r in routes} == EXPECTED_ROUTES
    stage = apigw.get_stage(ApiId=api["ApiId"], StageName="$default")
    assert stage["AutoDeploy"] is True
    access_log = stage["AccessLogSettings"]["DestinationArn"]
    assert access_log.endswith(":log-group:/aws/apigateway/conveyor-api")


def _check_data(endpoint: str, outputs: dict[str, Any]) -> None:
    rds = _client("rds", endpoint)
    (db,) = rds.describe_db_instances(DBInstanceIdentifier="conveyor")["DBInstances"]
    assert db["Engine"] == "postgres"
    assert db["StorageEncrypted"] is True
    assert db["PubliclyAccessible"] is False

    # The URL secret was written (write-only, never in state) with the instance's address.
    secrets = _client("secretsmanager", endpoint)
    url = secrets.get_secret_value(SecretId=outputs["database_url_secret_arn"])["SecretString"]
    assert re.fullmatch(
        rf"postgresql\+psycopg://conveyor:[A-Za-z0-9]{{40}}@{re.escape(db['Endpoint']['Address'])}:5432/conveyor\?sslmode=require",
        url,
    ), "database URL secret has an unexpected shape"
    state = (Path(outputs["_state_path"])).read_text()
    password = url.split(":", 2)[2].split("@", 1)[0]
    assert password not in state, "the database password leaked into the Terraform state"


def _check_alarms(endpoint: str, outputs: dict[str, Any]) -> None:
    cloudwatch = _client("cloudwatch", endpoint)
    alarms = cloudwatch.describe_alarms(AlarmNamePrefix="conveyor-alarms-")["MetricAlarms"]
    assert {a["AlarmName"] for a in alarms} == {
        "conveyor-alarms-dlq-not-empty",
        "conveyor-alarms-queue-oldest-message",
        "conveyor-alarms-scheduler-errors",
        "conveyor-alarms-scheduler-not-ticking",
        "conveyor-alarms-api-5xx",
    }
    for alarm in alarms:
        assert alarm["AlarmActions"] == [outputs["alarm_topic_arn"]]
    sns = _client("sns", endpoint)
    attributes = sns.get_topic_attributes(TopicArn=outputs["alarm_topic_arn"])["Attributes"]
    assert attributes["KmsMasterKeyId"]


def _check_guard_is_the_only_difference(terraform: Terraform) -> None:
    """Without emulator_mode a plan adds exactly the guarded resources, destroys nothing."""
    _, plan_out, _ = terraform.run(
        "plan-without-emulator-mode",
        "plan",
        "-no-color",
        "-detailed-exitcode",
        "-refresh=false",
        f"-var-file={terraform.var_file}",
        "-var=emulator_mode=false",
        ok_codes=(2,),
    )
    created = set(re.findall(r"^  # (\S+) will be created$", plan_out, flags=re.MULTILINE))
    updated = set(re.findall(r"^  # (\S+) will be updated in-place$", plan_out, flags=re.MULTILINE))
    assert created == EMULATOR_GUARDED
    assert updated <= MOTO_DRIFT, f"unexpected drift after apply: {sorted(updated - MOTO_DRIFT)}"
    assert "must be replaced" not in plan_out
    assert "will be destroyed" not in plan_out
    assert re.search(r"^Plan: 3 to add, \d+ to change, 0 to destroy\.$", plan_out, re.MULTILINE)


# --------------------------------------------------------------------------- the test


@pytest.mark.timeout(900)
def test_example_applies_and_destroys_on_moto(
    tmp_path: Path, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if shutil.which("terraform") is None:
        pytest.fail("terraform is not on PATH")
    shutil.copytree(
        REPO / "terraform",
        tmp_path / "terraform",
        ignore=shutil.ignore_patterns(".terraform", ".terraform.lock.hcl", "*.tfstate*"),
    )
    terraform = Terraform(tmp_path, moto_endpoint)
    terraform.run("init", "init", "-no-color", "-input=false")

    apply_seconds = destroy_seconds = float("nan")
    applied = False
    try:
        apply_seconds = terraform.apply()
        applied = True
        _, raw, _ = terraform.run("output", "output", "-json")
        outputs = {k: v["value"] for k, v in json.loads(raw).items()}
        outputs["_state_path"] = str(terraform.root / "terraform.tfstate")

        _check_queues(moto_endpoint, outputs)
        functions = _check_lambdas(moto_endpoint, outputs)
        _check_schedule(moto_endpoint, functions["scheduler"]["Configuration"]["FunctionArn"])
        _check_workers(moto_endpoint, outputs)
        _check_api(moto_endpoint, outputs)
        _check_data(moto_endpoint, outputs)
        _check_alarms(moto_endpoint, outputs)
        _check_guard_is_the_only_difference(terraform)
    finally:
        if applied:
            destroy_seconds = terraform.destroy()
        with capsys.disabled():
            print(
                f"\n[terraform] apply {apply_seconds:.1f}s, destroy {destroy_seconds:.1f}s "
                f"(logs in {terraform.logs})"
            )

    # Nothing of the environment is left.
    sqs = _client("sqs", moto_endpoint)
    assert not sqs.list_queues(QueueNamePrefix="conveyor").get("QueueUrls")
    assert not _client("lambda", moto_endpoint).list_functions()["Functions"]
    assert not _client("rds", moto_endpoint).describe_db_instances()["DBInstances"]
    clusters = _client("ecs", moto_endpoint).describe_clusters(clusters=["conveyor-workers"])
    assert all(c["status"] == "INACTIVE" for c in clusters["clusters"])  # deleted clusters linger
