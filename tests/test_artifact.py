"""What `make build` produced: the layer as Lambda will load it (.aws-sam/build, arm64), its
compiled extensions all aarch64, and each function importing its handler in an interpreter that
holds nothing but what Lambda's python3.12 provides (with the same layer built for this machine,
.aws-sam/host, since arm64 code cannot run here).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from importlib.util import MAGIC_NUMBER
from pathlib import Path

import pytest

from infra.local.stack import ROOT, Stack

pytestmark = pytest.mark.artifact

BUILD = ROOT / ".aws-sam" / "build"
LAYER = BUILD / "CoreLayer" / "python"
HOST_LAYER = ROOT / ".aws-sam" / "host" / "CoreLayer" / "python"
# ELF e_machine (offset 18, two bytes, little-endian for both): what the code was compiled for.
EM_AARCH64 = 183
E_MACHINE = {"x86_64": 62, "aarch64": EM_AARCH64, "arm64": EM_AARCH64}
# Every API function (from the template), and the worker.
API_FUNCTIONS = tuple(lid for lid, fn in Stack.load().functions().items() if fn.http_routes)
FUNCTIONS = (*API_FUNCTIONS, "WorkerFunction")
LAYER_MAX_BYTES = 60 * 1024 * 1024
# PEP 552 flags: bit 0 = hash-based, bit 1 = check_source. unchecked-hash is 0b01.
UNCHECKED_HASH = 0b01
# What the layer must ship (the runtime lacks them) and what it must not (the runtime has them).
LAYER_PACKAGES = ("ordo", "fastapi", "mangum", "pydantic", "pydantic_core", "aws_lambda_powertools")
RUNTIME_PACKAGES = ("boto3", "botocore")
# A python3.12 with only boto3 installed: the Lambda runtime, as far as imports can tell.
LAMBDA_VENV = ROOT / ".ordo" / "artifact-venv"
# Kept out of the layer, so off every API function's import path (packages and distributions).
NOT_SHIPPED = ("email_validator", "dns", "dnspython")
# Left out of the layer (layers/core/Makefile): FastAPI imports it only to rule out v1 models.
PYDANTIC_V1 = Path("pydantic") / "v1"

PROBE = """
import json, sys
import app
assert callable(app.handler), "app.handler is not callable"
if hasattr(app, "app"):
    app.app.openapi()  # every model of its routes
pydantic_v1 = "pydantic.v1" in sys.modules
import boto3
for name in {packages!r}:
    __import__(name)
files = {{name: getattr(module, "__file__", None) for name, module in sys.modules.items()}}
files = {{name: file for name, file in files.items() if file}}
print(json.dumps({{"files": files, "pydantic_v1": pydantic_v1}}))
"""


def _built(folder: Path) -> Path:
    if not folder.is_dir():
        pytest.fail(
            f"{folder.relative_to(ROOT)} is missing: run `make build` first "
            "(`make test` builds before testing).",
            pytrace=False,
        )
    return folder


@pytest.fixture(scope="module")
def layer() -> Path:
    """The layer that ships: arm64."""
    return _built(LAYER)


@pytest.fixture(scope="module")
def host_layer() -> Path:
    """The same layer for this machine's architecture, which the functions import here."""
    return _built(HOST_LAYER)


def _elf_machines(root: Path) -> dict[str, int]:
    """Every ELF file under root (``foo.so``, ``libbar.so.8.1.0``, an executable...) by its
    e_machine, whatever its name."""
    machines = {}
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            with path.open("rb") as file:
                header = file.read(20)
            if header[:4] == b"\x7fELF":
                machines[str(path.relative_to(root))] = int.from_bytes(header[18:20], "little")
    return machines


def _python_files(root: Path) -> Iterator[Path]:
    yield from (path for path in root.rglob("*.py") if path.is_file())


def _pinned(requirement_file: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    for text in requirement_file.read_text().splitlines():
        line = text.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            name = name.split("[", 1)[0]  # pyjwt[crypto] ships as pyjwt
            pins[name.strip().lower().replace("-", "_")] = version.strip()
    return pins


# --- the layer -------------------------------------------------------------------------------


def test_the_layer_is_built_from_the_current_sources(layer: Path, host_layer: Path) -> None:
    source = ROOT / "layers" / "core" / "ordo"
    stale = [
        f"{built.relative_to(BUILD.parent)}: {path.relative_to(source)}"
        for built in (layer, host_layer)
        for path in (*_python_files(source), *source.glob("botocore_data/**/*.json"))
        if not (built / "ordo" / path.relative_to(source)).is_file()
        or (built / "ordo" / path.relative_to(source)).read_bytes() != path.read_bytes()
    ]
    assert stale == [], f"the build is stale ({', '.join(stale)}): run `make build`"
    for lid, function in Stack.load().functions().items():
        built = BUILD / lid / "app.py"
        assert built.is_file(), f"{built} is missing: run `make build`"
        assert built.read_bytes() == (function.code_uri / "app.py").read_bytes(), (
            f"{lid} is stale: run `make build`"
        )


def test_the_layer_ships_ordo_and_its_pinned_dependencies(layer: Path) -> None:
    for package in LAYER_PACKAGES:
        assert (layer / package / "__init__.py").is_file(), f"{package} is not in the layer"
    shipped = {
        path.name.removesuffix(".dist-info").lower().rpartition("-")[::2]
        for path in layer.glob("*.dist-info")
    }
    for name, version in _pinned(ROOT / "layers" / "core" / "requirements.txt").items():
        assert (name, version) in shipped, f"{name}=={version} is not in the layer"


def test_every_compiled_extension_in_the_layer_is_aarch64(layer: Path) -> None:
    machines = _elf_machines(layer)

    assert machines, "no compiled extension in the layer: are its wheels installed?"
    assert {name: machine for name, machine in machines.items() if machine != EM_AARCH64} == {}


def test_the_host_layer_holds_the_same_packages_for_this_machine(
    layer: Path, host_layer: Path
) -> None:
    """What the functions are tested with here differs from what ships only in its platform."""
    shipped = sorted(path.name for path in layer.glob("*.dist-info"))
    assert sorted(path.name for path in host_layer.glob("*.dist-info")) == shipped
    assert set(_elf_machines(host_layer).values()) == {E_MACHINE[platform.machine()]}


def test_the_layer_leaves_boto3_to_the_runtime(layer: Path) -> None:
    shipped = [
        path.name
        for path in layer.iterdir()
        if path.name.lower().startswith(tuple(f"{name}" for name in RUNTIME_PACKAGES))
    ]

    assert shipped == []


def test_the_layer_is_small(layer: Path) -> None:
    size = sum(path.stat().st_size for path in layer.rglob("*") if path.is_file())

    assert size < LAYER_MAX_BYTES, f"{size / 2**20:.1f} MiB unzipped"


def test_every_module_in_the_layer_is_precompiled(layer: Path) -> None:
    modules = list(_python_files(layer))
    missing = [
        str(path.relative_to(layer))
        for path in modules
        if not (path.parent / "__pycache__" / f"{path.stem}.cpython-312.pyc").is_file()
    ]

    assert len(modules) > 100, "suspiciously few modules: is the layer complete?"
    assert missing == [], f"{len(missing)} of {len(modules)} modules have no .pyc"


def test_the_layer_bytecode_is_python312_unchecked_hash(layer: Path) -> None:
    """Lambda unzips with new mtimes: timestamp .pyc would be stale, checked ones rehashed."""
    pycs = list(layer.rglob("__pycache__/*.pyc"))
    wrong = {}
    for pyc in pycs:
        header = pyc.read_bytes()[:8]
        flags = int.from_bytes(header[4:8], "little")
        if header[:4] != MAGIC_NUMBER or flags != UNCHECKED_HASH:
            wrong[str(pyc.relative_to(layer))] = (header[:4].hex(), flags)

    assert pycs, "no .pyc in the layer"
    assert wrong == {}, f"{len(wrong)} of {len(pycs)} .pyc are not python3.12 unchecked-hash"


# --- the functions, as Lambda imports them ---------------------------------------------------


def _python312() -> Path:
    candidates: list[Path] = []
    pyenv = shutil.which("pyenv")
    if pyenv:
        root = subprocess.run(
            [pyenv, "root"], capture_output=True, text=True, check=False
        ).stdout.strip()
        if root:
            candidates = sorted(Path(root).glob("versions/3.12.*/bin/python3.12"))
    found = str(candidates[-1]) if candidates else shutil.which("python3.12")
    if not found:
        pytest.fail("python3.12 not found (pyenv or PATH): install it, e.g. `pyenv install 3.12`")
    return Path(found)


def _boto3_pin() -> str:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (pin,) = (dep for dep in dependencies if dep.replace(" ", "").startswith("boto3=="))
    return str(pin).replace(" ", "")


@pytest.fixture(scope="module")
def lambda_python() -> Path:
    """A cached python3.12 venv holding only boto3 (pinned as in pyproject), like the runtime."""
    pin = _boto3_pin()
    ready = LAMBDA_VENV / f".ready-{pin}"
    python = LAMBDA_VENV / "bin" / "python"
    if not ready.is_file():
        shutil.rmtree(LAMBDA_VENV, ignore_errors=True)
        LAMBDA_VENV.parent.mkdir(exist_ok=True)
        for command in (
            [str(_python312()), "-m", "venv", str(LAMBDA_VENV)],
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", pin],
        ):
            run = subprocess.run(command, capture_output=True, text=True, check=False)
            if run.returncode:
                pytest.fail(f"{' '.join(command)} failed:\n{run.stdout}\n{run.stderr}")
        ready.touch()
    return python


@pytest.fixture(scope="module")
def stack() -> Stack:
    return Stack.load()


def _is_under(file: str, folder: Path) -> bool:
    return Path(file).resolve().is_relative_to(folder.resolve())


@pytest.mark.parametrize("function", FUNCTIONS)
def test_the_function_imports_from_its_build_and_the_layer_alone(
    host_layer: Path, lambda_python: Path, stack: Stack, function: str, tmp_path: Path
) -> None:
    layer = host_layer
    code = BUILD / function
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": f"{code}{os.pathsep}{layer}",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "LAMBDA_TASK_ROOT": str(code),
        "AWS_LAMBDA_FUNCTION_NAME": function,
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "POWERTOOLS_METRICS_DISABLED": "true",
    } | stack.functions()[function].environment

    run = subprocess.run(
        [str(lambda_python), "-s", "-c", PROBE.format(packages=LAYER_PACKAGES)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )

    assert run.returncode == 0, run.stderr
    probed = json.loads(run.stdout.strip().splitlines()[-1])
    files: dict[str, str] = probed["files"]
    assert _is_under(files["app"], code)
    for package in LAYER_PACKAGES:
        assert _is_under(files[package], layer), f"{package} came from {files[package]}"
    assert _is_under(files["boto3"], LAMBDA_VENV), f"boto3 came from {files['boto3']}"
    leaked = sorted(
        f"{name}: {file}"
        for name, file in files.items()
        if _is_under(file, ROOT)
        and not any(_is_under(file, folder) for folder in (code, layer, LAMBDA_VENV))
    )
    assert leaked == [], "imported from outside the build and the runtime"
    assert probed["pydantic_v1"] is False, "imported pydantic.v1, which the layer lacks"


def test_the_runtimes_botocore_creates_ordos_ssm_client_of_the_trimmed_model(
    host_layer: Path, lambda_python: Path, tmp_path: Path
) -> None:
    """The layer ships ``ordo/botocore_data`` and the runtime's botocore reads it (ordo.aws)."""
    probe = (
        "import json; from ordo import aws; "
        "client = aws._session().create_client('ssm', region_name='us-east-1'); "
        "print(json.dumps(client.meta.service_model.operation_names))"
    )
    run = subprocess.run(
        [str(lambda_python), "-s", "-c", probe],
        cwd=tmp_path,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(host_layer)},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == ["GetParameter"]


def test_the_layer_does_not_ship_email_validator(layer: Path, host_layer: Path) -> None:
    """FastAPI's OpenAPI models import email-validator whenever it is installed, ~25 ms of every
    API function's cold start: ordo has its own rule, and without it here nothing imports it."""
    for built in (layer, host_layer):
        shipped = {path.name for path in built.iterdir()} | {
            path.name.partition("-")[0].lower() for path in built.glob("*.dist-info")
        }
        assert shipped & set(NOT_SHIPPED) == set(), f"{built.relative_to(ROOT)}"


def test_the_layer_does_not_ship_pydantic_v1(layer: Path, host_layer: Path) -> None:
    """FastAPI imports ``pydantic.v1`` (~15 ms of every API function's cold start) only to tell
    v1 models apart, and takes an ImportError for "none"; each function is imported and its
    OpenAPI document built without it above."""
    for built in (layer, host_layer):
        assert (built / "pydantic" / "__init__.py").is_file(), f"{built.relative_to(ROOT)}"
        assert not (built / PYDANTIC_V1).exists(), f"{built.relative_to(ROOT)}"
