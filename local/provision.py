"""Creates, in the AWS emulation, what template.yaml declares for the data
plane (secrets and tables), and returns the template read against them.
Shared by the local stack and the tests, so neither repeats the template."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from local.template import Stack, load_stack, load_yaml

TABLE_KEYS = ("AttributeDefinitions", "KeySchema", "BillingMode", "GlobalSecondaryIndexes", "LocalSecondaryIndexes")


def provision(
    root: Path,
    client: Callable[[str], Any],
    *,
    prefix: str,
    secret_value: str,
    overrides: dict[str, str],
) -> Stack:
    """`client(service)` builds a boto3 client for the emulation."""
    template = load_yaml(root / "template.yaml")
    secrets = client("secretsmanager")
    secret_arns = {
        logical_id: secrets.create_secret(Name=f"{prefix}/{logical_id}", SecretString=secret_value)["ARN"]
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::SecretsManager::Secret"
    }
    stack = load_stack(root, overrides=overrides, prefix=prefix, secret_arns=secret_arns)
    ddb = client("dynamodb")
    for table in stack.tables.values():
        ddb.create_table(TableName=table.name, **{k: v for k, v in table.properties.items() if k in TABLE_KEYS})
        ttl = table.properties.get("TimeToLiveSpecification")
        if ttl:
            ddb.update_time_to_live(TableName=table.name, TimeToLiveSpecification=ttl)
    return stack
