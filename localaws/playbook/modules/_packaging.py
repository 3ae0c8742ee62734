"""Build Lambda deployment packages: deterministic zips, rebuilt only when their inputs change.

A package is the source folder at the zip root, each extra package folder under its own
name, and the dependencies pip installs from a requirements file. The SHA-256 of those
inputs (plus runtime and build platform) is stored next to the zip, and a later build with
the same digest reuses the zip without running pip.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from localaws.errors import ConfigError, ToolkitError

ZIP_NAME = "package.zip"
DIGEST_NAME = "package.sha256"
# The earliest timestamp a zip entry can hold, so entries never depend on file mtimes.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
# Bytecode embeds source mtimes and differs between interpreters, so it never goes into a package.
SKIPPED_DIRS = frozenset({"__pycache__", ".git", ".mypy_cache", ".pytest_cache", ".ruff_cache"})
SKIPPED_SUFFIXES = (".pyc", ".pyo")
PIP_TAIL_LINES = 20
# The platform tag AWS Lambda's x86_64 Python runtimes accept for binary wheels.
AWS_PLATFORM = "manylinux2014_x86_64"


class BuildError(ToolkitError):
    """Building a Lambda deployment package failed."""


@dataclass(frozen=True)
class BuildInputs:
    """Everything that decides the bytes of one function's package."""

    source: Path
    packages: tuple[Path, ...]
    requirements: Path | None
    runtime: str
    # "local" installs dependencies with `build_python`, and "aws" downloads Lambda's Linux wheels.
    target: str
    build_python: Path | None = None


@dataclass(frozen=True)
class Package:
    """A built zip, the digest of its inputs, and its SHA-256 as Lambda reports `CodeSha256`."""

    zip_path: Path
    input_digest: str
    code_sha256: str
    rebuilt: bool


def python_version(runtime: str) -> str:
    """Return the Python version of a Lambda runtime name, e.g. `3.11` for `python3.11`."""
    match = re.fullmatch(r"python(3\.\d+)", runtime)
    if match is None:
        raise ConfigError(
            f"runtime {runtime!r} is not a Python runtime, but dependencies from a requirements file "
            "can be installed for python3.x runtimes only"
        )
    return match.group(1)


def pip_command(inputs: BuildInputs, requirements: Path, target_dir: Path) -> list[str]:
    """Return the pip command that installs `requirements` into `target_dir` for the inputs' target."""
    common = ["install", "--target", str(target_dir), "--no-compile", "--disable-pip-version-check",
              "--no-input", "-r", str(requirements)]
    if inputs.target == "local":
        if inputs.build_python is None:
            raise ConfigError(
                "no interpreter is set to build Lambda dependencies for the local emulator. "
                "Start the stack first so its virtualenv exists."
            )
        return [str(inputs.build_python), "-m", "pip", *common]
    return [sys.executable, "-m", "pip", *common, "--platform", AWS_PLATFORM, "--implementation", "cp",
            "--python-version", python_version(inputs.runtime), "--only-binary=:all:"]


def run_pip(command: list[str]) -> None:
    """Run a pip command and raise BuildError with the end of pip's output when it fails."""
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        output = (completed.stderr or completed.stdout).strip().splitlines()
        tail = "\n".join(output[-PIP_TAIL_LINES:])
        raise BuildError(
            f"pip failed with exit status {completed.returncode} while installing Lambda dependencies "
            f"({' '.join(command)}):\n{tail}"
        )


def lists_requirements(requirements: Path) -> bool:
    """Return whether a requirements file names anything, because pip rejects a file without requirements."""
    lines = (line.split("#", 1)[0].strip() for line in requirements.read_text().splitlines())
    return any(lines)


def iter_files(folder: Path) -> Iterator[Path]:
    """Yield the files below `folder` that belong in a package, without caches and bytecode."""
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(name for name in dirs if name not in SKIPPED_DIRS)
        for name in sorted(files):
            if not name.endswith(SKIPPED_SUFFIXES):
                yield Path(root) / name


def source_entries(inputs: BuildInputs) -> dict[str, Path]:
    """Map each zip entry name of the source and package folders to its file."""
    if not inputs.source.is_dir():
        raise ConfigError(f"Lambda source folder {inputs.source} is not found. Check the `source` path.")
    entries = {path.relative_to(inputs.source).as_posix(): path for path in iter_files(inputs.source)}
    for folder in inputs.packages:
        if not folder.is_dir():
            raise ConfigError(f"package folder {folder} is not found. Check the `shared` paths.")
        for path in iter_files(folder):
            name = f"{folder.name}/{path.relative_to(folder).as_posix()}"
            if name in entries:
                raise ConfigError(f"{path} and {entries[name]} would both be stored as {name} in the zip")
            entries[name] = path
    return entries


def input_digest(inputs: BuildInputs, entries: dict[str, Path]) -> str:
    """Return the hex SHA-256 over entry names, file bytes, requirements, runtime and build platform."""
    digest = hashlib.sha256()
    for name in sorted(entries):
        path = entries[name]
        digest.update(f"file\0{name}\0{file_mode(path):o}\0".encode())
        content = path.read_bytes()
        digest.update(f"{len(content)}\0".encode())
        digest.update(content)
    if inputs.requirements is not None:
        digest.update(b"requirements\0")
        digest.update(inputs.requirements.read_bytes())
    # NOTE: the local platform is the interpreter's path, so rebuilding the emulator's virtualenv with
    # another Python version at the same path reuses zips built for the old one.
    platform = str(inputs.build_python) if inputs.target == "local" else AWS_PLATFORM
    digest.update(f"\0runtime\0{inputs.runtime}\0target\0{inputs.target}\0{platform}".encode())
    return digest.hexdigest()


def file_mode(path: Path) -> int:
    """Return the fixed permission bits a file gets in the zip: 0755 if executable, else 0644."""
    return 0o755 if os.stat(path).st_mode & 0o111 else 0o644


def write_zip(entries: dict[str, Path], zip_path: Path) -> None:
    """Write `entries` to `zip_path` in name order with fixed timestamps and permissions."""
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
            info.create_system = 3
            info.external_attr = (0o100000 | file_mode(entries[name])) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, entries[name].read_bytes(), compresslevel=9)


def code_sha256(zip_path: Path) -> str:
    """Return the base64 SHA-256 of a zip, the form of Lambda's `CodeSha256`."""
    return base64.b64encode(hashlib.sha256(zip_path.read_bytes()).digest()).decode()


def cached_package(out_dir: Path, digest: str) -> Package | None:
    """Return the package in `out_dir` if it was built from inputs with `digest`."""
    zip_path = out_dir / ZIP_NAME
    digest_path = out_dir / DIGEST_NAME
    if not zip_path.is_file() or not digest_path.is_file():
        return None
    if digest_path.read_text().strip() != digest:
        return None
    return Package(zip_path, digest, code_sha256(zip_path), rebuilt=False)


def build_package(inputs: BuildInputs, out_dir: Path) -> Package:
    """Return the package for `inputs` in `out_dir`, building it only when the stored digest differs."""
    entries = source_entries(inputs)
    digest = input_digest(inputs, entries)
    cached = cached_package(out_dir, digest)
    if cached is not None:
        return cached

    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="build-", dir=out_dir) as staging:
        all_entries = dict(entries)
        if inputs.requirements is not None and lists_requirements(inputs.requirements):
            dependencies = Path(staging) / "dependencies"
            dependencies.mkdir()
            run_pip(pip_command(inputs, inputs.requirements, dependencies))
            for path in iter_files(dependencies):
                # The function's own files win over a dependency of the same name.
                all_entries.setdefault(path.relative_to(dependencies).as_posix(), path)
        partial = Path(staging) / ZIP_NAME
        write_zip(all_entries, partial)
        # The digest is written after the zip is in place, so an interrupted build is never reused.
        (out_dir / DIGEST_NAME).unlink(missing_ok=True)
        os.replace(partial, out_dir / ZIP_NAME)
    (out_dir / DIGEST_NAME).write_text(digest + "\n")
    return Package(out_dir / ZIP_NAME, digest, code_sha256(out_dir / ZIP_NAME), rebuilt=True)


def build_package_copy(inputs: BuildInputs, out_dir: Path, scratch_dir: Path) -> Package:
    """Return the package for `inputs` without writing to `out_dir`, reusing it or building in `scratch_dir`.

    Check mode uses this, so a dry run leaves the build folder as it was.
    """
    entries = source_entries(inputs)
    cached = cached_package(out_dir, input_digest(inputs, entries))
    if cached is not None:
        return cached
    shutil.rmtree(scratch_dir, ignore_errors=True)
    return build_package(inputs, scratch_dir)
