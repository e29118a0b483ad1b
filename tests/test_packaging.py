"""Packaging says what the code does: the Python version, every import declared, nothing declared unused, pins."""
from __future__ import annotations

import ast
import configparser
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("models", "indexer", "pipelines", "search_web")


def setup_cfg() -> configparser.ConfigParser:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    return cfg


def requirements(text: str) -> list[Requirement]:
    return [Requirement(line.strip()) for line in text.strip().splitlines()
            if line.strip() and not line.strip().startswith("#")]


def imported_modules() -> dict[str, set[str]]:
    """Top-level third-party modules imported anywhere in the four packages -> the files importing them."""
    found: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else []
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in PACKAGES and top != "__future__":
                        found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def test_python_requires_covers_the_standard_library_the_code_uses():
    spec = SpecifierSet(setup_cfg()["options"]["python_requires"])
    uses_tomllib = any("tomllib" in p.read_text(encoding="utf-8")
                       for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))
    assert not uses_tomllib or "3.10" not in spec, "tomllib needs Python 3.11: python_requires must exclude 3.10"
    assert "3.11" in spec and sys.version_info[:2] >= (3, 11)


def test_every_import_is_declared_and_every_declaration_is_used():
    cfg = setup_cfg()
    declared = {canonicalize_name(r.name) for r in requirements(cfg["options"]["install_requires"])}
    extras = {name: {canonicalize_name(r.name) for r in requirements(text)}
              for name, text in cfg["options.extras_require"].items()}
    optional = extras["cpu"] | extras["gpu"] | extras["cluster"]
    dist_of = packages_distributions()
    used: set[str] = set()
    for module, files in imported_modules().items():
        dists = {canonicalize_name(d) for d in dist_of.get(module, [module])}
        if module == "faiss":
            dists = {"faiss-cpu", "faiss-gpu-cu12"}
        assert dists & (declared | optional), f"{module} (imported by {sorted(files)[:3]}) is not declared in setup.cfg"
        used |= dists
    unused = declared - used
    assert not unused, f"declared in install_requires but imported nowhere: {sorted(unused)}"


def test_the_constraints_pin_every_requirement_within_its_range():
    cfg = setup_cfg()
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version.strip()
    wanted = requirements(cfg["options"]["install_requires"])
    wanted += requirements(cfg["options.extras_require"]["dev"]) + requirements(cfg["options.extras_require"]["cpu"])
    for req in wanted:
        if req.marker is not None and not req.marker.evaluate():
            continue
        name = canonicalize_name(req.name)
        assert name in pins, f"constraints.txt does not pin {req.name}"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"{req.name}=={pins[name]} is outside {req.specifier}")
