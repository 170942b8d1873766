"""Corrections to moto where it differs from AWS in ways ordo depends on, and speed-ups.

Every patch is one entry of :data:`PATCHES`, registered with the AWS rule it implements (or,
for a speed patch, what it saves while answering as moto does) and the test that fails
without it. A patch is a set of :class:`Patch` objects (an attribute of moto replaced, undoable),
built on what moto holds when it is applied; :func:`apply` and :func:`undo` take patch names,
as LocalStack's ``localstack.utils.patch`` registry does for its own patches of moto.

Fidelity: ``sequence_numbers``, ``visibility_zero``, ``dynamodb_isolation``. What ordo's own
emulator needs from moto: ``visibility_changes`` and ``message_signals`` (``infra.local.esm``).
Speed: the rest (each tested against moto unpatched, in tests/local/test_moto_speed.py).
"""

from __future__ import annotations

import functools
import itertools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

_MISSING = object()


@dataclass
class Patch:
    """``obj.name`` replaced by ``new`` while applied. :meth:`undo` puts back what ``obj`` held
    itself, or deletes the attribute when ``obj`` only inherited it."""

    obj: Any
    name: str
    new: Any
    applied: bool = field(default=False, init=False)
    _old: Any = field(default=_MISSING, init=False, repr=False)

    def apply(self) -> None:
        if not self.applied:
            self._old = vars(self.obj).get(self.name, _MISSING)
            setattr(self.obj, self.name, self.new)
            self.applied = True

    def undo(self) -> None:
        if self.applied:
            if self._old is _MISSING:
                delattr(self.obj, self.name)
            else:
                setattr(self.obj, self.name, self._old)
            self.applied = False


class Patches:
    """Patches applied in the order added and undone in reverse."""

    def __init__(self) -> None:
        self.patches: list[Patch] = []

    def add(self, obj: Any, name: str, new: Any) -> None:
        self.patches.append(Patch(obj, name, new))

    def apply(self) -> None:
        for patch in self.patches:
            patch.apply()

    def undo(self) -> None:
        for patch in reversed(self.patches):
            patch.undo()


@dataclass(frozen=True)
class MotoPatch:
    """One registered correction of moto."""

    rule: str  # the AWS rule it implements; for a speed patch, what it saves
    test: str  # tests/local/<file>::<test> that fails without it
    make: Callable[[], Patches]  # builds its patches on moto as it is now (imports moto)
    speed: bool = False


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
    """Patch the moto backend in this process with ``names`` (default: every patch), in
    :data:`PATCHES` order; a patch already applied is left as it is."""
    wanted = set(PATCHES if names is None else names)
    for name, patch in PATCHES.items():
        if name in wanted and name not in _applied:
            patches = patch.make()
            patches.apply()
            _applied[name] = patches


def undo(names: Iterable[str] | None = None) -> None:
    """Put back what ``names`` (default: every applied patch) replaced. The patches applied
    after the first of them are undone too, last first (one may wrap what another replaced),
    and those not named are applied again."""
    chosen = set(_applied if names is None else names) & set(_applied)
    if not chosen:
        return
    order = list(_applied)
    later = order[min(order.index(name) for name in chosen) :]
    for name in reversed(later):
        _applied.pop(name).undo()
    apply(name for name in later if name not in chosen)


def applied() -> list[str]:
    """The names of the patches applied now, in the order they were."""
    return list(_applied)


@contextmanager
def undone(*names: str) -> Iterator[None]:
    """Within: moto without ``names``. After: the patches applied before, applied afresh in
    :data:`PATCHES` order, so each wraps what it wraps in production."""
    before = applied()
    undo(names)
    try:
        yield
    finally:
        undo()
        apply(before)


def _order_sequence_numbers() -> Patches:
    patches = Patches()
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

    patches.add(SQSBackend, "send_message", send_message)
    return patches


def _message(queue: Any, receipt_handle: str) -> Any:
    """The message a receipt handle names, or None once it is deleted."""
    return next((m for m in list(queue._messages) if m.had_receipt_handle(receipt_handle)), None)


def _free_groups_at_visibility_zero() -> Patches:
    """moto leaves a message among its in-flight ("pending") ones when the call lands in the
    same millisecond as its new visibility time; it then redelivers the group out of order."""
    patches = Patches()
    from moto.sqs.models import SQSBackend

    original = SQSBackend.change_message_visibility

    def change_message_visibility(
        self: SQSBackend, queue_name: str, receipt_handle: str, visibility_timeout: int
    ) -> None:
        original(self, queue_name, receipt_handle, visibility_timeout)
        if int(visibility_timeout) == 0:
            queue = self.get_queue(queue_name)
            if (message := _message(queue, receipt_handle)) is not None:
                queue.pending_messages.discard(message)

    patches.add(SQSBackend, "change_message_visibility", change_message_visibility)
    return patches


def _record_visibility_changes() -> Patches:
    patches = Patches()
    from moto.sqs.models import SQSBackend

    original = SQSBackend.change_message_visibility

    def change_message_visibility(
        self: SQSBackend, queue_name: str, receipt_handle: str, visibility_timeout: int
    ) -> None:
        original(self, queue_name, receipt_handle, visibility_timeout)
        message = _message(self.get_queue(queue_name), receipt_handle)
        if message is not None:  # else deleted by another thread since
            visibility_changes.record(queue_name, message.id, int(visibility_timeout))

    patches.add(SQSBackend, "change_message_visibility", change_message_visibility)
    return patches


def _serialise_dynamodb() -> Patches:
    patches = Patches()
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

        patches.add(DynamoDBBackend, name, serialised)
    return patches


def _roll_back_touched_items_only() -> Patches:
    """moto backs up every table a transaction touches with ``copy.deepcopy``, so a transaction
    costs time in proportion to the table's size (90 ms a job in the local cloud's lane). Keep a
    copy of the touched items instead, and put them back if the transaction is cancelled."""
    patches = Patches()
    import copy

    from moto.dynamodb import models
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    class _TablesByReference:
        @staticmethod
        def deepcopy(value: Any, memo: Any = None) -> Any:
            return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    patches.add(models, "copy", _TablesByReference)
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

    patches.add(DynamoDBBackend, "transact_write_items", transact_write_items)
    return patches


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


def _look_up_dispatch_once() -> Patches:
    patches = Patches()
    from moto import backends
    from moto.core import responses

    modules = tuple(backends.list_of_moto_modules())
    patches.add(backends, "list_of_moto_modules", lambda: modules)
    cached = functools.cache(vars(responses)["method_names_from_class"])
    patches.add(responses, "method_names_from_class", cached)
    return patches


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


def _serialise_plain_attribute_values() -> Patches:
    patches = Patches()
    from moto.core.serialize import JSONSerializer

    original = JSONSerializer._serialize_type_structure

    def serialise(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if key and shape.name == "AttributeValue" and _plain_attribute_value(value):
            serialized[key] = value
            return
        original(self, serialized, value, shape, key)

    patches.add(JSONSerializer, "_serialize_type_structure", serialise)
    return patches


def _parse_update_expressions_once() -> Patches:
    patches = Patches()
    from moto.dynamodb.parsing.expressions import (  # type: ignore[attr-defined]
        UpdateExpressionParser,
    )

    # moto parses every UpdateExpression twice a call, and only reads the tree it gets: its
    # validator works on a deep copy. A malformed expression raises, and is never cached.
    parse = functools.lru_cache(maxsize=1024)(UpdateExpressionParser.make)
    patches.add(UpdateExpressionParser, "make", staticmethod(parse))
    return patches


def _traverse_expressions_by_type() -> Patches:
    """moto's expression validators walk the whole tree once per check, asking ``isinstance``
    of an abstract class at every node: the same answers, looked up by node type."""
    patches = Patches()
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

    patches.add(
        DepthFirstTraverser,
        "traverse_node_recursively",
        traverse_node_recursively,
    )
    return patches


class _Noted(dict[str, Any]):
    """A dict that notes the keys looked up in it."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.noted: list[str] = []

    def __getitem__(self, key: str) -> Any:
        self.noted.append(key)
        return super().__getitem__(key)


def _parse_conditions_once() -> Patches:
    patches = Patches()
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

    patches.add(ConditionExpressionParser, "parse", parse)
    return patches


def _convert_names_once() -> Patches:
    patches = Patches()
    from moto.core import responses, utils
    from moto.sqs import models

    converted = functools.lru_cache(maxsize=4096)(utils.camelcase_to_underscores)
    for module in (models, responses):  # each imported the function by name
        patches.add(module, "camelcase_to_underscores", converted)
    return patches


def _announce_messages() -> Patches:
    patches = Patches()
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

    patches.add(SQSBackend, "send_message", send_message)
    patches.add(SQSBackend, "change_message_visibility", change_message_visibility)
    patches.add(SQSBackend, "delete_message", delete_message)
    return patches


_SPEED_TESTS = "tests/local/test_moto_speed.py::"
_SAME_ANSWERS = f"{_SPEED_TESTS}test_patched_moto_answers_the_lanes_calls_as_unpatched_moto_does"

PATCHES: dict[str, MotoPatch] = {
    "sequence_numbers": MotoPatch(
        "SQS FIFO: a message's SequenceNumber grows with its place in the queue, racing senders"
        " included (moto draws 20 random digits)",
        "tests/local/test_moto_fidelity.py::test_fifo_sequence_numbers_grow_in_the_order_messages_join_the_queue",
        _order_sequence_numbers,
    ),
    "visibility_zero": MotoPatch(
        "SQS ChangeMessageVisibility(0): the message is visible at once, so its FIFO group is"
        " free as soon as no other message of it is in flight, and is delivered in order",
        "tests/local/test_moto_fidelity.py::test_messages_handed_back_with_visibility_0_come_back_in_order",
        _free_groups_at_visibility_zero,
    ),
    "visibility_changes": MotoPatch(
        "Lambda's SQS mapping leaves a failed record's visibility as the function set it: every"
        " successful change is recorded (visibility_changes) for infra.local.esm to honour",
        "tests/local/test_moto_fidelity.py::test_visibility_changes_are_recorded",
        _record_visibility_changes,
    ),
    "transaction_rollback": MotoPatch(
        "a transaction costs time in proportion to its items, not to its tables' size (moto"
        " deep-copies every table it touches); a cancelled one still leaves nothing behind",
        "tests/local/test_moto_fidelity.py::test_a_transaction_copies_no_table",
        _roll_back_touched_items_only,
        speed=True,
    ),
    "dynamodb_isolation": MotoPatch(
        "DynamoDB: a transaction is isolated; no other write sees its items half done or is"
        " lost to its cancellation (moto checks, writes and rolls back with nothing in between)",
        "tests/local/test_moto_fidelity.py::test_a_write_during_a_cancelled_transaction_is_not_lost",
        _serialise_dynamodb,
    ),
    "dispatch_lookups": MotoPatch(
        "moto's server lists its package folder and inspects the response class once, not per"
        " request",
        _SAME_ANSWERS,
        _look_up_dispatch_once,
        speed=True,
    ),
    "attribute_values": MotoPatch(
        "an AttributeValue that is plain JSON (no binary) goes out as it is, not member by member",
        _SAME_ANSWERS,
        _serialise_plain_attribute_values,
        speed=True,
    ),
    "update_expressions": MotoPatch(
        "each UpdateExpression is parsed once, not twice a call",
        _SAME_ANSWERS,
        _parse_update_expressions_once,
        speed=True,
    ),
    "expression_traversal": MotoPatch(
        "the expression validators' isinstance answers are kept per node type",
        _SAME_ANSWERS,
        _traverse_expressions_by_type,
        speed=True,
    ),
    "condition_expressions": MotoPatch(
        "a ConditionExpression's parse is kept by the expression and the names and values it"
        " looked up",
        _SAME_ANSWERS,
        _parse_conditions_once,
        speed=True,
    ),
    "camelcase_names": MotoPatch(
        "each SQS attribute name is converted from CamelCase once, not per message",
        _SAME_ANSWERS,
        _convert_names_once,
        speed=True,
    ),
    "message_signals": MotoPatch(
        "every message sent, made visible with ChangeMessageVisibility(0) or deleted is"
        " announced (message_signals), so a mapping in this process learns of it without polling",
        f"{_SPEED_TESTS}test_sends_visibility_zero_and_deletes_are_announced",
        _announce_messages,
    ),
}
_applied: dict[str, Patches] = {}  # by name, in the order applied
