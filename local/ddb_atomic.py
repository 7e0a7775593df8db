"""DynamoDB serialises the writes to one item: a conditional write, or a
transaction, is checked and applied atomically. moto's backend has no locks,
so two threads (two "Lambdas" of the local stack, or a test's concurrent
claimers) can both pass a condition before either writes. This wraps moto's
write operations in one lock, giving the local stack and the tests the
atomicity that DynamoDB guarantees (never more: each call is still one
independent request)."""

from __future__ import annotations

import functools
import threading

WRITES = ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item", "execute_transaction")
_lock = threading.RLock()


def serialise_writes() -> None:
    from moto.dynamodb.models import DynamoDBBackend

    for name in WRITES:
        method = getattr(DynamoDBBackend, name)
        if getattr(method, "_harpoon_atomic", False):
            continue
        setattr(DynamoDBBackend, name, _locked(method))


def _locked(method):
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with _lock:
            return method(*args, **kwargs)

    wrapper._harpoon_atomic = True
    return wrapper
