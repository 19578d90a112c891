"""The folders say what a module may do: `streams/decisions/` and `zoho/` are pure, so
they import no Kafka or HTTP client, no Faust, and nothing of ours that does I/O."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PURE_PACKAGES = ("streams/decisions", "zoho")
# What is done to a source, apart from where sources are read and written.
PURE_SOURCE_MODULES = ("sources.operations", "sources.seed", "sources.record", "sources.crypto")
# Third-party and standard-library modules that talk to the world.
IO_MODULES = frozenset(
    {
        "faust",
        "aiohttp",
        "aiokafka",
        "mode",
        "socket",
        "subprocess",
        "http",
        "urllib.request",
        "requests",
        "httpx",
        "sqlite3",
        "shutil",
        "tempfile",
        "yaml",
    }
)
# Of our own modules, only these may be imported by a pure one.
PURE_OWN_PREFIXES = (
    "streams.decisions",
    "zoho",
    "schemas.source",
    "schemas.records",
    "schemas.conversion",
    "schemas.envelope",
    "schemas.topics",
    "schemas.admin",
    *PURE_SOURCE_MODULES,
)
OWN_PACKAGES = ("streams", "ingress", "schemas", "zoho", "sources", "bench", "harness", "tests")


def pure_modules() -> list[str]:
    return sorted(
        [
            ".".join(path.relative_to(REPO).with_suffix("").parts)
            for package in PURE_PACKAGES
            for path in (REPO / package).rglob("*.py")
        ]
        + list(PURE_SOURCE_MODULES)
    )


def imported_names(module: str) -> set[str]:
    tree = ast.parse((REPO / (module.replace(".", "/") + ".py")).read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def forbidden(name: str) -> bool:
    if any(name == io or name.startswith(io + ".") for io in IO_MODULES):
        return True
    own = name.split(".")[0] in OWN_PACKAGES
    return own and not name.startswith(PURE_OWN_PREFIXES)


@pytest.mark.parametrize("module", pure_modules())
def test_a_pure_module_imports_nothing_that_does_io(module: str) -> None:
    assert sorted(name for name in imported_names(module) if forbidden(name)) == []


def test_the_pure_packages_load_no_client_even_indirectly() -> None:
    loaded = subprocess.run(  # noqa: S603 - our own interpreter on our own modules
        [
            sys.executable,
            "-c",
            "import importlib, sys\n"
            f"for name in {pure_modules()!r}: importlib.import_module(name)\n"
            "print(' '.join(sorted(sys.modules)))",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert [name for name in loaded if name.split(".")[0] in {"faust", "aiohttp", "aiokafka"}] == []


def test_the_rule_catches_an_impure_import() -> None:
    assert forbidden("aiohttp")
    assert forbidden("streams.clients.zoho_crm")
    assert forbidden("schemas.settings")
    assert not forbidden("streams.decisions.money")
    assert not forbidden("decimal")
