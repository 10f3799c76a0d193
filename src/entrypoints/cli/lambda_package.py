"""The AWS Lambda deployment zip: imagecore's packages and their runtime dependencies.

The dependencies come from the installed distribution's metadata (the core ones and the extras
of LAMBDA_EXTRAS, without LOCAL_TOOLS_ONLY) and pip installs them as wheels built for the Lambda
runtime's Python and architecture, whatever machine runs the build. The zip is written
deterministically, so Terraform's source_code_hash changes only when the content does.

It holds bytecode for the runtime's Python where this machine has that Python: a Lambda's code
directory is read-only, so without it every cold start compiles every module again (measured:
850 ms to import the API handler instead of 350 ms).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import attrs
from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

DISTRIBUTION = "imagecore"
OWN_PACKAGES = ("imagecore", "adapters", "entrypoints")
LAMBDA_EXTRAS = ("aws", "lambda")

# Dependencies only the local tools need; the Lambda handlers never import them.
LOCAL_TOOLS_ONLY = frozenset(
    {
        "granian",  # the local HTTP server of `imagecore serve`
        "click",  # the `imagecore` command line
        "python-hcl2",  # reads the Terraform module for `imagecore aws-setup`
        "httpx",  # the client commands (`imagecore upload`, `ls`, ...) talk to a server with it
    }
)

# Published as source only, and pure Python: built into a wheel on this machine (which runs
# anywhere), because pip installs nothing but wheels for another platform.
BUILT_HERE = frozenset({"pyvips"})

ARCHITECTURES = {"x86_64": "x86_64", "arm64": "aarch64"}  # Lambda's name: the wheel tags' name

_ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest a zip can hold
_ZIP_FILE_MODE = (stat.S_IFREG | 0o644) << 16
_ZIP_UNIX = 3  # the "made by" system; the default depends on the building machine
_PIP_ERROR_LINES = 20


class LambdaPackageError(Exception):
    """The deployment zip could not be built; the message says why."""


@attrs.frozen
class LambdaRuntime:
    """The Lambda runtime the dependencies are installed for."""

    python_version: str = "3.12"
    architecture: str = "x86_64"

    def __attrs_post_init__(self) -> None:
        if not re.fullmatch(r"3\.\d+", self.python_version):
            raise LambdaPackageError(
                f"the Python version must look like 3.12, not {self.python_version!r}"
            )
        if self.architecture not in ARCHITECTURES:
            raise LambdaPackageError(
                f"the architecture must be one of {', '.join(ARCHITECTURES)}, "
                f"not {self.architecture!r}"
            )

    @property
    def name(self) -> str:
        return f"python{self.python_version} {self.architecture}"

    def pip_arguments(self) -> list[str]:
        machine = ARCHITECTURES[self.architecture]
        # python3.12 and later run on Amazon Linux 2023 (glibc 2.34), earlier ones on Amazon
        # Linux 2 (glibc 2.26). pip matches --platform tags exactly, so name every glibc version
        # allowed, newest first, the order pip prefers them in.
        newest_glibc_minor = 28 if self._minor >= 12 else 26
        platforms = [
            *(f"manylinux_2_{minor}_{machine}" for minor in range(newest_glibc_minor, 16, -1)),
            f"manylinux2014_{machine}",
        ]
        return [
            *(argument for platform in platforms for argument in ("--platform", platform)),
            "--python-version",
            self.python_version,
            "--implementation",
            "cp",
            "--only-binary=:all:",
        ]

    def marker_environment(self) -> dict[str, str]:
        return {
            "python_version": self.python_version,
            "python_full_version": f"{self.python_version}.0",
            "implementation_name": "cpython",
            "platform_python_implementation": "CPython",
            "os_name": "posix",
            "sys_platform": "linux",
            "platform_system": "Linux",
            "platform_machine": ARCHITECTURES[self.architecture],
        }

    @property
    def _minor(self) -> int:
        return int(self.python_version.split(".")[1])


@attrs.frozen
class PackageReport:
    path: Path
    zipped_bytes: int
    unzipped_bytes: int
    files: int
    bytecode_for: str | None = None
    """The Python version the zip holds bytecode for; None if it holds none."""


def runtime_requirements(runtime: LambdaRuntime | None = None) -> list[str]:
    """What pip installs into the zip: imagecore's requirements without an extra and those of
    LAMBDA_EXTRAS (following self-references such as imagecore[aws]), minus LOCAL_TOOLS_ONLY.
    Markers are evaluated for `runtime`, or for the running interpreter when it is None."""
    metadata = importlib.metadata.distribution(DISTRIBUTION).metadata
    missing = set(LAMBDA_EXTRAS) - set(metadata.get_all("Provides-Extra") or [])
    if missing:
        raise LambdaPackageError(
            f"the installed {DISTRIBUTION} has no extra {', '.join(sorted(missing))}: its "
            f"metadata is older than pyproject.toml, reinstall it (pip install -e '.[dev]')"
        )
    requirements = [Requirement(line) for line in importlib.metadata.requires(DISTRIBUTION) or []]
    environment = runtime.marker_environment() if runtime else {}
    wanted: set[str] = set()
    pending = {"", *LAMBDA_EXTRAS}  # "" stands for no extra
    done: set[str] = set()
    while pending:
        extra = pending.pop()
        done.add(extra)
        for requirement in requirements:
            if not _marker_allows(requirement.marker, extra, environment):
                continue
            name = canonicalize_name(requirement.name)
            if name == DISTRIBUTION:
                pending |= {canonicalize_name(extra) for extra in requirement.extras} - done
            elif name not in LOCAL_TOOLS_ONLY:
                # The marker is evaluated here, for the target; pip would judge it by this machine.
                wanted.add(f"{requirement.name}{requirement.specifier}")
    return sorted(wanted)


def build_lambda_package(output: Path, runtime: LambdaRuntime | None) -> PackageReport:
    """Write the deployment zip to `output`, with the dependencies built for `runtime`, or for
    the running interpreter and machine when it is None (to import the result locally)."""
    requirements = runtime_requirements(runtime)
    with tempfile.TemporaryDirectory(prefix="imagecore-lambda-") as scratch:
        dependencies = Path(scratch) / "target"
        wheels = _wheels_built_here(requirements, Path(scratch) / "wheels")
        _pip_install(requirements, dependencies, runtime, wheels)
        files = dict(_dependency_files(dependencies))
        for arcname, path in _own_files():
            if arcname in files:
                raise LambdaPackageError(f"a dependency ships {arcname}, one of imagecore's files")
            files[arcname] = path
        version = runtime.python_version if runtime else _running_version()
        compiler = _python_for(version)
        with tempfile.TemporaryDirectory(prefix="imagecore-bytecode-") as bytecode:
            if compiler is not None:
                files |= _bytecode(files, compiler, Path(bytecode))
            report = _write_zip(files, output)
        return attrs.evolve(report, bytecode_for=version if compiler else None)


# Run by the runtime's Python: bytecode that needs no source check (unchecked-hash, so nothing
# depends on file times), under a fixed hash seed (set constants are written in hash order):
# equal sources give equal bytes. A file that does not compile gets none, as Python would.
_COMPILE = """
import importlib.util, json, py_compile, sys
root = sys.argv[1]
for source, arcname in json.load(sys.stdin):
    try:
        py_compile.compile(
            source, cfile=root + "/" + importlib.util.cache_from_source(arcname), dfile=arcname,
            doraise=True, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
    except py_compile.PyCompileError:
        pass
"""


def _running_version() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def _python_for(version: str) -> str | None:
    """An interpreter of this Python version: the running one, else python3.X on the PATH if
    it runs; None if neither."""
    if version == _running_version():
        return sys.executable
    found = shutil.which(f"python{version}")
    if found is None:
        return None
    probe = subprocess.run(  # noqa: S603 - a Python found on the PATH, asked its version
        [found, "-c", "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')"],
        capture_output=True,
        text=True,
        check=False,
    )
    return found if probe.returncode == 0 and probe.stdout.strip() == version else None


def _bytecode(files: Mapping[str, Path], python: str, root: Path) -> dict[str, Path]:
    sources = [(str(path), arcname) for arcname, path in files.items() if arcname.endswith(".py")]
    result = subprocess.run(  # noqa: S603 - the runtime's Python compiling our files
        [python, "-S", "-c", _COMPILE, str(root)],
        input=json.dumps(sources),
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},
        check=False,
    )
    if result.returncode != 0:
        raise LambdaPackageError(f"compiling the bytecode failed:\n{result.stderr.strip()}")
    return {path.relative_to(root).as_posix(): path for path in root.rglob("*.pyc")}


def _marker_allows(marker: Marker | None, extra: str, environment: Mapping[str, str]) -> bool:
    if marker is None:
        return extra == ""
    return marker.evaluate({**environment, "extra": extra})


def _wheels_built_here(requirements: list[str], wheels: Path) -> Path:
    """``wheels``, holding a wheel of each requirement of BUILT_HERE; each must be pure
    Python (a ``none-any`` wheel), or it would not run on the Lambda runtime."""
    wheels.mkdir(parents=True, exist_ok=True)
    wanted = [line for line in requirements if _name(line) in BUILT_HERE]
    if wanted:
        _pip(["wheel", "--no-deps", "--wheel-dir", str(wheels), *wanted], "build the wheels of")
    for wheel in wheels.glob("*.whl"):
        if not wheel.name.endswith("-none-any.whl"):
            raise LambdaPackageError(f"{wheel.name} is not pure Python: it cannot be built here")
    return wheels


def _name(requirement: str) -> str | None:
    """The requirement's canonical name; None if it is malformed (pip will say how)."""
    try:
        return canonicalize_name(Requirement(requirement).name)
    except InvalidRequirement:
        return None


def _pip_install(
    requirements: list[str], target: Path, runtime: LambdaRuntime | None, wheels: Path
) -> None:
    _pip(
        [
            "install",
            "--target",
            str(target),
            "--find-links",
            str(wheels),
            *(runtime.pip_arguments() if runtime else []),
            "--upgrade",
            "--no-compile",
            *requirements,
        ],
        "install",
    )


def _pip(arguments: list[str], doing: str) -> None:
    command = [
        sys.executable,
        "-m",
        "pip",
        *arguments,
        "--disable-pip-version-check",
        "--quiet",
    ]
    # Our own interpreter running pip on the requirements of our own metadata.
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        tail = (result.stderr.strip() or result.stdout.strip()).splitlines()[-_PIP_ERROR_LINES:]
        raise LambdaPackageError(
            f"pip could not {doing} the dependencies (exit {result.returncode}):\n"
            + "\n".join(tail)
        )


# pip --target puts console scripts in bin/, and some wheels ship their own test suite as a
# top-level package (swagger-ui-py has test/); a Lambda function runs neither. Nor does it read
# the C sources of compiled extensions (dependency-injector ships 11 MiB of them) or JavaScript
# source maps (swagger-ui-py's 13 MiB; only a browser's developer tools ask for them).
_NOT_FROM_DEPENDENCIES = frozenset({"bin", "test", "tests"})
_UNUSED_AT_RUN_TIME = (".c", ".h", ".pyx", ".pxd", ".map")


def _dependency_files(root: Path) -> Iterator[tuple[str, Path]]:
    for arcname, path in _files_under(root):
        if arcname.split("/", 1)[0] in _NOT_FROM_DEPENDENCIES:
            continue
        if path.suffix in _UNUSED_AT_RUN_TIME:
            continue
        yield arcname, path


def _own_files() -> Iterator[tuple[str, Path]]:
    for package in OWN_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            raise LambdaPackageError(f"cannot find the package {package} to put in the zip")
        # Where it is imported from: src/ of an editable install, site-packages otherwise.
        for arcname, path in _files_under(Path(spec.origin).parent):
            yield f"{package}/{arcname}", path


def _files_under(root: Path) -> Iterator[tuple[str, Path]]:
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if path.is_file() and "__pycache__" not in relative.parts and path.suffix != ".pyc":
            yield relative.as_posix(), path


def _write_zip(files: Mapping[str, Path], output: Path) -> PackageReport:
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(f".{output.name}.partial")
    unzipped_bytes = 0
    # Sorted names, one date, one mode, one "made by": equal content gives equal bytes.
    try:
        with zipfile.ZipFile(partial, "w") as archive:
            for arcname in sorted(files):
                info = zipfile.ZipInfo(arcname, date_time=_ZIP_DATE_TIME)
                info.external_attr = _ZIP_FILE_MODE
                info.create_system = _ZIP_UNIX
                data = files[arcname].read_bytes()
                unzipped_bytes += len(data)
                archive.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
        partial.replace(output)  # never a half-written zip under the output's name
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return PackageReport(
        path=output,
        zipped_bytes=output.stat().st_size,
        unzipped_bytes=unzipped_bytes,
        files=len(files),
    )
