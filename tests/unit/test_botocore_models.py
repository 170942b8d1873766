"""ordo's trimmed botocore models (``ordo/botocore_data``, ``python -m infra.botocore_models``):
what the installed botocore gives, holding every operation ordo calls on its clients, and seen
by ordo's session alone."""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator
from pathlib import Path

import botocore.loaders
import pytest
from botocore import xform_name
from botocore.session import Session, get_session

from infra import botocore_models
from infra.local.stack import ROOT
from ordo import aws
from tests.harness import reset_ordo_caches

ORDO = ROOT / "layers" / "core" / "ordo"
BUILTIN = botocore.loaders.Loader.BUILTIN_DATA_PATH


@pytest.fixture
def session() -> Iterator[Session]:
    reset_ordo_caches()
    yield aws._session()
    reset_ordo_caches()


def test_the_trimmed_models_are_what_the_generator_writes_from_this_botocore() -> None:
    expected = botocore_models.models()
    committed = {path: path.read_text() for path in botocore_models.DATA.rglob("*.json")}
    assert committed == expected, (
        "ordo/botocore_data is stale (botocore upgraded, or ordo.aws.TRIMMED changed): "
        "run `python -m infra.botocore_models` and commit its output"
    )


# --- what ordo calls on aws.<service>() ------------------------------------------------------


class _Calls:
    """Follows each ``aws.<service>()`` in ordo and the functions to what is called on it
    (``get_parameter``, ``exceptions.ParameterNotFound``), through the ordo functions it is
    passed to."""

    def __init__(self) -> None:
        files = {
            ".".join(path.relative_to(ORDO.parent).with_suffix("").parts): path
            for path in ORDO.rglob("*.py")
        } | {f"functions.{path.parent.name}": path for path in ROOT.glob("functions/*/app.py")}
        self.trees = {module: ast.parse(path.read_text()) for module, path in files.items()}
        self.parents = {
            child: node
            for tree in self.trees.values()
            for node in ast.walk(tree)
            for child in ast.iter_child_nodes(node)
        }

    def follow(self, service: str) -> set[str]:
        used: set[str] = set()
        for module, tree in self.trees.items():
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name)
                    and (node.func.value.id, node.func.attr) == ("aws", service)
                ):
                    used |= self._used(node, module, f"{module}:{node.lineno}")
        return used

    def _used(self, client: ast.expr, module: str, where: str) -> set[str]:
        parent = self.parents[client]
        if isinstance(parent, ast.Attribute) and parent.attr == "exceptions":
            error = self.parents[parent]
            assert isinstance(error, ast.Attribute), where
            return {f"exceptions.{error.attr}"}
        if isinstance(parent, ast.Attribute):
            return {parent.attr}
        if (
            isinstance(parent, ast.Call)
            and client in parent.args
            and isinstance(parent.func, ast.Name)
        ):
            return self._passed(parent.func.id, parent.args.index(client), module, where)
        pytest.fail(f"{where}: the client is used in a way this test cannot follow")

    def _passed(self, name: str, position: int, module: str, where: str) -> set[str]:
        tree = self.trees[module]
        imported = [
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
            and node.module
            and any(alias.name == name and alias.asname is None for alias in node.names)
        ]
        source = imported[0] if imported else module  # else defined in the same module
        body = self.trees[source].body if source in self.trees else []
        functions = [n for n in body if isinstance(n, ast.FunctionDef) and n.name == name]
        if not functions:
            pytest.fail(f"{where}: the client goes to {name}, outside ordo")
        parameter = [*functions[0].args.posonlyargs, *functions[0].args.args][position].arg
        return {
            used
            for node in ast.walk(functions[0])
            if isinstance(node, ast.Name) and node.id == parameter
            for used in self._used(node, source, f"{source}.{name}")
        }


def test_the_trimmed_models_hold_every_operation_ordo_calls(session: Session) -> None:
    calls = _Calls()
    for service, operations in aws.TRIMMED.items():
        whole = get_session().get_service_model(service)
        by_method = {xform_name(name): name for name in whole.operation_names}
        used = calls.follow(service)
        errors = {name.removeprefix("exceptions.") for name in used if "." in name}
        called = {by_method[method] for method in used - {f"exceptions.{e}" for e in errors}}
        assert called == set(operations), (
            f"ordo calls {sorted(called)} on aws.{service}(): add them to ordo.aws.TRIMMED and run "
            "`python -m infra.botocore_models`, or give that code a client with the whole model "
            "(as ordo.admin does)"
        )
        client = session.create_client(service)
        assert {e for e in errors if not hasattr(client.exceptions, e)} == set()


def test_the_calls_are_followed_into_the_functions_the_client_is_passed_to() -> None:
    """ordo.wiring: ``aws.ssm().get_parameter(...)``, and ``current_signing_key(aws.ssm(), ...)``
    which catches ``ssm.exceptions.ParameterNotFound``."""
    assert _Calls().follow("ssm") == {"get_parameter", "exceptions.ParameterNotFound"}


# --- ordo's session alone --------------------------------------------------------------------


def test_ordos_session_finds_the_trimmed_service_models_and_botocores_other_data(
    session: Session,
) -> None:
    loader = session.get_component("data_loader")
    assert loader.search_paths[0] == aws.DATA_PATH
    assert loader.search_paths[-1] == BUILTIN
    for service, operations in aws.TRIMMED.items():
        client = session.create_client(service)
        assert client.meta.service_model.operation_names == list(operations)
        version = client.meta.service_model.api_version
        _, path = loader.load_data_with_path(f"{service}/{version}/service-2")
        assert Path(path).is_relative_to(aws.DATA_PATH)
        _, path = loader.load_data_with_path(f"{service}/{version}/endpoint-rule-set-1")
        assert Path(path).is_relative_to(BUILTIN)
    for name in ("endpoints", "partitions", "sdk-default-configuration"):
        _, path = loader.load_data_with_path(name)
        assert Path(path).is_relative_to(BUILTIN), name


def test_other_sessions_keep_the_whole_models(session: Session) -> None:
    session.create_client("ssm")
    assert aws.DATA_PATH not in os.environ.get("AWS_DATA_PATH", "")
    other = get_session().create_client("ssm")
    assert "PutParameter" in other.meta.service_model.operation_names


def test_the_fork_server_shares_one_loader_between_ordos_sessions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """infra.local.zygote parses the data once for its children's sessions: ordo's (this layer
    has ordo); a default session gets a loader of its own, of the whole models."""
    import botocore.session

    from infra.local import zygote

    monkeypatch.setattr(botocore.session, "create_loader", botocore.session.create_loader)
    zygote._share_botocore_data(("ssm",))
    loaders = []
    for _ in range(2):
        reset_ordo_caches()
        loaders.append(aws._session().get_component("data_loader"))
    reset_ordo_caches()
    assert loaders[0] is loaders[1]
    assert loaders[0].load_service_model("ssm", "service-2")["operations"].keys() == {
        "GetParameter"
    }
    other = get_session().get_component("data_loader")
    assert other is not loaders[0]
    assert "PutParameter" in other.load_service_model("ssm", "service-2")["operations"]
