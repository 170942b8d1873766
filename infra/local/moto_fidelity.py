"""Corrections to moto where it differs from AWS in ways ordo depends on.

- SQS FIFO ``SequenceNumber``: AWS assigns a large number that only grows within a message
  group; moto draws 20 random digits. ordo orders queue positions by it, so it must grow in
  the order messages join the queue, racing senders included.
- DynamoDB isolation: moto checks a transaction's conditions and then writes, with nothing
  stopping another thread in between, so two racing transactions can both pass (two users
  claim one name; a quota admits one job too many). Every DynamoDB call is serialised here,
  which gives the isolation DynamoDB guarantees.
- DynamoDB transaction cost: moto deep-copies every table a transaction touches, so it slows
  down as the table grows. Only the touched items are kept, and put back on a cancellation.
- SQS ``ChangeMessageVisibility`` to 0: AWS makes the message visible at once, so its FIFO
  group is free as soon as no other message of the group is in flight. moto leaves the message
  among its in-flight ("pending") messages when the call lands in the same microsecond as its
  new visibility time, and then redelivers the group out of order; such a message is taken out
  of the pending set here.
- Every visibility change that succeeds (``ChangeMessageVisibility`` and each entry of
  ``ChangeMessageVisibilityBatch``, which moto answers through the former) is recorded in
  :data:`visibility_changes`, so the local event source mapping can honour a change that the
  function it invoked made to a message of its batch (see ``infra.local.esm``).

Speed, for the calls the lane makes (each tested against moto unpatched, with :func:`undo`):

- moto's server lists its own package folder on disk, and ``inspect``s the response class, on
  every request: both are looked up once here.
- moto serialises every DynamoDB ``AttributeValue`` member by member through the service model
  (about half of a GetItem's time in moto). A value that is already plain JSON (every type but
  binary) goes out as it is.
- moto parses an UpdateExpression twice a call (about a tenth of a claim's time): each
  expression is parsed once.
- moto's update-expression validators walk the tree once per check, asking ``isinstance`` of
  an abstract class at every node: the answers are kept per node type.
- moto parses a ConditionExpression from scratch twice a call (lexing it character by
  character): a parse is kept, by the expression and the names and values it looked up, and
  the same parse is handed out again (its tree only reads the item it is evaluated on).
- moto's SQS queue builds all its attributes, each name converted from CamelCase character by
  character, three times a message it receives (to read the retention period) and again per
  message sent: about a third of a ReceiveMessage's time in moto. The conversion is a pure
  function of the name, so each name is converted once.
- Every message sent, made visible again with ``ChangeMessageVisibility(0)`` or deleted (which
  may free its FIFO group) is announced on :data:`message_signals`, so an event source
  mapping in this process learns of it without polling.

Each patch is one entry of :data:`PATCHES`; :func:`apply` and :func:`undo` take patch names.
"""

from __future__ import annotations

import functools
import itertools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

# Per applied patch, what it replaced: (owner, attribute name, the original value).
_originals: dict[str, list[tuple[Any, str, Any]]] = {}
_MISSING = object()


def _replace(patch: str, owner: Any, name: str, value: Any) -> None:
    _originals.setdefault(patch, []).append((owner, name, owner.__dict__.get(name, _MISSING)))
    setattr(owner, name, value)


@dataclass(frozen=True)
class VisibilityChange:
    """One successful ``ChangeMessageVisibility`` of one message."""

    sequence: int  # grows with every change recorded in this process
    seconds: int  # the VisibilityTimeout asked for
    at: float  # wall-clock epoch seconds at which moto applied it


class VisibilityChanges:
    """The latest visibility change of each message, by (queue name, message id).

    Written by moto's request threads, read by the event source mappings' threads. A reader
    takes a :meth:`mark` before it invokes a function and asks for the changes made
    :meth:`since` that mark, so its own calls before and after never count. Only the newest
    ``limit`` messages are remembered: a mapping looks back no further than one invocation.
    """

    def __init__(self, limit: int = 100_000) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self._sequence = 0
        self._changes: OrderedDict[tuple[str, str], VisibilityChange] = OrderedDict()

    def mark(self) -> int:
        """The sequence number of the latest change recorded so far."""
        with self._lock:
            return self._sequence

    def record(self, queue_name: str, message_id: str, seconds: int) -> None:
        with self._lock:
            self._sequence += 1
            key = (queue_name, message_id)
            self._changes[key] = VisibilityChange(self._sequence, seconds, time.time())
            self._changes.move_to_end(key)
            while len(self._changes) > self._limit:
                self._changes.popitem(last=False)

    def since(
        self, mark: int, queue_name: str, message_ids: Iterable[str]
    ) -> dict[str, VisibilityChange]:
        """The latest change of each of ``message_ids`` made after ``mark``, by message id."""
        with self._lock:
            found = {
                message_id: self._changes.get((queue_name, message_id))
                for message_id in message_ids
            }
        return {
            message_id: change
            for message_id, change in found.items()
            if change is not None and change.sequence > mark
        }


visibility_changes = VisibilityChanges()


class MessageSignals:
    """Per SQS queue name, a count of the changes that may let a receive find a message.

    moto's request threads :meth:`announce`; a poller takes :meth:`seen` before it receives and
    then waits (:meth:`wait`) for a later count, so nothing announced in between is missed.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._counts: dict[str, int] = {}

    def seen(self, queue_name: str) -> int:
        with self._changed:
            return self._counts.get(queue_name, 0)

    def announce(self, queue_name: str) -> None:
        with self._changed:
            self._counts[queue_name] = self._counts.get(queue_name, 0) + 1
            self._changed.notify_all()

    def wait(
        self, queue_name: str, seen: int, timeout: float, stop: threading.Event | None = None
    ) -> bool:
        """Wait up to ``timeout`` s for an announcement after ``seen``; True if one came.
        ``stop`` is looked at every 50 ms."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._counts.get(queue_name, 0) == seen:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (stop is not None and stop.is_set()):
                    return False
                self._changed.wait(min(remaining, 0.05))
            return True


message_signals = MessageSignals()


def apply(names: Iterable[str] | None = None) -> None:
    """Patch the moto backend in this process with ``names`` (default: every patch, in
    :data:`PATCHES` order); a patch already applied is left as it is."""
    for name in PATCHES if names is None else names:
        if name not in _originals:
            _originals[name] = []
            PATCHES[name]()


def undo(names: Iterable[str] | None = None) -> None:
    """Put back what ``names`` (default: every applied patch) replaced, last applied first.
    Undo a patch only with those applied after it that touch the same attributes."""
    chosen = list(_originals) if names is None else [n for n in names if n in _originals]
    for name in reversed([n for n in _originals if n in chosen]):
        for owner, attribute, original in reversed(_originals.pop(name)):
            if original is _MISSING:
                delattr(owner, attribute)
            else:
                setattr(owner, attribute, original)


def _order_sequence_numbers() -> None:
    from moto.sqs.models import SQSBackend

    original = SQSBackend.send_message
    counter = itertools.count(10**19)
    lock = threading.Lock()

    def send_message(self: SQSBackend, *args: Any, **kwargs: Any) -> Any:
        # The number is drawn in the same critical section that adds the message to its queue:
        # numbered after the send, two racing senders could get numbers against queue order.
        with lock:
            message = original(self, *args, **kwargs)
            if message.sequence_number is not None and not getattr(message, "ordo_ordered", False):
                message.sequence_number = str(next(counter))
                message.ordo_ordered = True  # type: ignore[attr-defined]
        return message

    _replace("sequence_numbers", SQSBackend, "send_message", send_message)


def _record_visibility_changes() -> None:
    from moto.sqs.models import SQSBackend

    original = SQSBackend.change_message_visibility

    def change_message_visibility(
        self: SQSBackend, queue_name: str, receipt_handle: str, visibility_timeout: int
    ) -> None:
        original(self, queue_name, receipt_handle, visibility_timeout)
        queue = self.get_queue(queue_name)
        message = next(
            (m for m in list(queue._messages) if m.had_receipt_handle(receipt_handle)), None
        )
        if message is None:  # deleted by another thread since
            return
        seconds = int(visibility_timeout)
        if seconds == 0:
            queue.pending_messages.discard(message)
        visibility_changes.record(queue_name, message.id, seconds)

    _replace(
        "visibility_changes", SQSBackend, "change_message_visibility", change_message_visibility
    )


def _serialise_dynamodb() -> None:
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    for name in (
        "put_item",
        "get_item",
        "update_item",
        "delete_item",
        "query",
        "scan",
        "transact_write_items",
    ):
        original = getattr(DynamoDBBackend, name)

        def serialised(*args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return __original(*args, **kwargs)

        _replace("dynamodb_isolation", DynamoDBBackend, name, serialised)


def _roll_back_touched_items_only() -> None:
    """moto backs up every table a transaction touches with ``copy.deepcopy``, so a transaction
    costs time in proportion to the table's size (90 ms a job in the local cloud's lane). Keep a
    copy of the touched items instead, and put them back if the transaction is cancelled."""
    import copy

    from moto.dynamodb import models
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    class _TablesByReference:
        @staticmethod
        def deepcopy(value: Any, memo: Any = None) -> Any:
            return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    _replace("transaction_rollback", models, "copy", _TablesByReference)
    original = DynamoDBBackend.transact_write_items

    def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        try:
            before = [_touched(self, item) for item in transact_items]
        except Exception:  # a malformed request: moto's own validation answers it
            before = []
        try:
            original(self, transact_items)
        except Exception:
            for table_name, key, attributes in reversed(before):
                if attributes is None:
                    self.delete_item(table_name, key)
                else:
                    self.put_item(table_name, attributes)
            raise

    _replace("transaction_rollback", DynamoDBBackend, "transact_write_items", transact_write_items)


def _touched(backend: Any, item: dict[str, Any]) -> tuple[str, dict[str, Any], Any]:
    """(table, key, the item's attributes now, or None) for one action of a transaction."""
    op_type, op = next(iter(item.items()))
    table = backend.get_table(op["TableName"])
    if op_type == "Put":
        names = [table.hash_key_attr, table.range_key_attr]
        key = {name: op["Item"][name] for name in names if name}
    else:
        key = op["Key"]
    current = backend.get_item(op["TableName"], key)
    return op["TableName"], key, current.to_json()["Attributes"] if current else None


def _look_up_dispatch_once() -> None:
    from moto import backends
    from moto.core import responses

    modules = tuple(backends.list_of_moto_modules())
    _replace("dispatch_lookups", backends, "list_of_moto_modules", lambda: modules)
    cached = functools.cache(vars(responses)["method_names_from_class"])
    _replace("dispatch_lookups", responses, "method_names_from_class", cached)


def _plain_attribute_value(value: Any) -> bool:
    """A DynamoDB ``AttributeValue`` that serialises to itself: no binary in it."""
    if type(value) is not dict or len(value) != 1:
        return False
    ((kind, inner),) = value.items()
    check = _PLAIN_CHECKS.get(kind)
    return check is not None and check(inner)


def _texts(value: Any) -> bool:
    return type(value) is list and all(type(text) is str for text in value)


_PLAIN_CHECKS: dict[str, Callable[[Any], bool]] = {
    "S": lambda value: type(value) is str,
    "N": lambda value: type(value) is str,
    "SS": _texts,
    "NS": _texts,
    "NULL": lambda value: type(value) is bool,
    "BOOL": lambda value: type(value) is bool,
    "M": lambda value: (
        type(value) is dict
        and all(type(k) is str and _plain_attribute_value(v) for k, v in value.items())
    ),
    "L": lambda value: type(value) is list and all(_plain_attribute_value(v) for v in value),
}


def _serialise_plain_attribute_values() -> None:
    from moto.core.serialize import JSONSerializer

    original = JSONSerializer._serialize_type_structure

    def serialise(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if key and shape.name == "AttributeValue" and _plain_attribute_value(value):
            serialized[key] = value
            return
        original(self, serialized, value, shape, key)

    _replace("attribute_values", JSONSerializer, "_serialize_type_structure", serialise)


def _parse_update_expressions_once() -> None:
    from moto.dynamodb.parsing.expressions import (  # type: ignore[attr-defined]
        UpdateExpressionParser,
    )

    # moto parses every UpdateExpression twice a call, and only reads the tree it gets: its
    # validator works on a deep copy. A malformed expression raises, and is never cached.
    parse = functools.lru_cache(maxsize=1024)(UpdateExpressionParser.make)
    _replace("update_expressions", UpdateExpressionParser, "make", staticmethod(parse))


def _traverse_expressions_by_type() -> None:
    """moto's expression validators walk the whole tree once per check, asking ``isinstance``
    of an abstract class at every node: the same answers, looked up by node type."""
    from moto.dynamodb.parsing.ast_nodes import (  # type: ignore[attr-defined]
        DepthFirstTraverser,
        Node,
    )

    is_node: dict[type, bool] = {}
    processed: dict[tuple[type, type], bool] = {}

    def walk(traverser: Any, node: Any, child_id: int) -> Any:
        node_type = type(node)
        known = is_node.get(node_type)
        if known is None:
            known = is_node[node_type] = isinstance(node, Node)
        if not known:
            return node
        parent_node = node.parent
        if node.children is not None:
            for i, child_node in enumerate(node.children):
                traverser.pre_processing_of_child(node, i)
                walk(traverser, child_node, i)
        key = (type(traverser), node_type)
        wanted = processed.get(key)
        if wanted is None:
            wanted = processed[key] = isinstance(node, traverser.nodes_to_be_processed())
        if wanted:
            node = traverser.process(node)
            node.parent = parent_node
            if parent_node:
                parent_node.children[child_id] = node
        return node

    def traverse_node_recursively(self: Any, node: Any, child_id: int = -1) -> Any:
        return walk(self, node, child_id)

    _replace(
        "expression_traversal",
        DepthFirstTraverser,
        "traverse_node_recursively",
        traverse_node_recursively,
    )


class _Noted(dict[str, Any]):
    """A dict that notes the keys looked up in it."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.noted: list[str] = []

    def __getitem__(self, key: str) -> Any:
        self.noted.append(key)
        return super().__getitem__(key)


def _parse_conditions_once() -> None:
    import copy
    import json

    from moto.dynamodb.comparisons import ConditionExpressionParser

    original = ConditionExpressionParser.parse
    # What a parse of each expression looked up: (names, values). The lexer decides that from
    # the expression alone, so a parse is a function of the expression and those entries.
    looked_up: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
    parsed: OrderedDict[tuple[str, str], tuple[Any, tuple[str, ...], tuple[str, ...]]] = (
        OrderedDict()
    )
    lock = threading.Lock()

    def key(parser: Any, expression: str) -> tuple[str, str] | None:
        names_used, values_used = looked_up[expression]
        names, values = parser.expression_attribute_names, parser.expression_attribute_values
        try:
            entries = [
                [names[name] for name in names_used] if names_used else None,
                [values[value] for value in values_used] if values_used else None,
            ]
            return expression, json.dumps(entries, sort_keys=True)
        except (KeyError, TypeError):  # missing, or not JSON: parsed afresh (and raised)
            return None

    def parse(self: Any) -> Any:
        expression = self.condition_expression
        if not expression or not isinstance(expression, str):
            return original(self)
        with lock:
            found = key(self, expression) if expression in looked_up else None
            kept = parsed.get(found) if found is not None else None
            if kept is not None:
                parsed.move_to_end(found)  # type: ignore[arg-type]
        if kept is None:
            names, values = self.expression_attribute_names, self.expression_attribute_values
            private = ConditionExpressionParser(  # its tree keeps copies, never the request's
                expression,
                None if names is None else _Noted(copy.deepcopy(names)),
                None if values is None else _Noted(copy.deepcopy(values)),
            )
            op = original(private)  # a malformed expression raises: nothing is kept
            kept = (op, tuple(private.expr_attr_names_found), tuple(private.expr_attr_values_found))
            with lock:
                looked_up[expression] = (
                    tuple(getattr(private.expression_attribute_names, "noted", ())),
                    tuple(getattr(private.expression_attribute_values, "noted", ())),
                )
                found = key(self, expression)
                if found is not None:
                    parsed[found] = kept
                    while len(parsed) > 4096:
                        parsed.popitem(last=False)
        op, names_found, values_found = kept
        self.expr_attr_names_found.extend(names_found)
        self.expr_attr_values_found.extend(values_found)
        return op

    _replace("condition_expressions", ConditionExpressionParser, "parse", parse)


def _convert_names_once() -> None:
    from moto.core import responses, utils
    from moto.sqs import models

    converted = functools.lru_cache(maxsize=4096)(utils.camelcase_to_underscores)
    for module in (models, responses):  # each imported the function by name
        _replace("camelcase_names", module, "camelcase_to_underscores", converted)


def _announce_messages() -> None:
    from moto.sqs.models import SQSBackend

    send, change, delete = (
        SQSBackend.send_message,
        SQSBackend.change_message_visibility,
        SQSBackend.delete_message,
    )

    def send_message(self: SQSBackend, queue_name: str, *args: Any, **kwargs: Any) -> Any:
        message = send(self, queue_name, *args, **kwargs)
        message_signals.announce(queue_name)
        return message

    def change_message_visibility(
        self: SQSBackend, queue_name: str, receipt_handle: str, visibility_timeout: int
    ) -> None:
        change(self, queue_name, receipt_handle, visibility_timeout)
        if int(visibility_timeout) == 0:
            message_signals.announce(queue_name)

    def delete_message(self: SQSBackend, queue_name: str, receipt_handle: str) -> None:
        delete(self, queue_name, receipt_handle)
        message_signals.announce(queue_name)

    _replace("message_signals", SQSBackend, "send_message", send_message)
    _replace("message_signals", SQSBackend, "change_message_visibility", change_message_visibility)
    _replace("message_signals", SQSBackend, "delete_message", delete_message)


PATCHES: dict[str, Callable[[], None]] = {
    "sequence_numbers": _order_sequence_numbers,
    "visibility_changes": _record_visibility_changes,
    "transaction_rollback": _roll_back_touched_items_only,
    "dynamodb_isolation": _serialise_dynamodb,
    "dispatch_lookups": _look_up_dispatch_once,
    "attribute_values": _serialise_plain_attribute_values,
    "update_expressions": _parse_update_expressions_once,
    "expression_traversal": _traverse_expressions_by_type,
    "condition_expressions": _parse_conditions_once,
    "camelcase_names": _convert_names_once,
    "message_signals": _announce_messages,
}
