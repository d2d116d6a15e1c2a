"""Generate the Python code of the settlement API from ``proto/`` (``make proto``).

Runs ``grpc_tools.protoc`` (the protoc bundled with grpcio-tools, so the output
depends only on the pinned grpcio-tools version) over
``proto/zkgrid/settlement/v1/*.proto`` and writes ``*_pb2.py``, ``*_pb2.pyi``
and ``*_pb2_grpc.py`` under ``zkgrid/settlement/v1/``, typed ``*_pb2_grpc.pyi``
stubs for the gRPC modules (protoc writes none; these are written here from the
descriptor set, so mypy sees typed stubs, servicers and ``add_*_to_server``),
plus ``zkgrid/settlement/v1/__init__.py``. The generator owns ``v1/`` only: the
parent package ``zkgrid/settlement/`` (its ``__init__.py`` and the hand-written
``convert.py``, records ⇄ messages) is not generated and never touched. Generated
files are never edited by hand; ``tests/unit/zkgrid/test_proto_drift.py`` regenerates
into a temporary directory and fails when the committed files differ.

Usage: ``python scripts/gen_proto.py [--out DIR]`` (default: the repository root).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

from google.protobuf.descriptor_pb2 import FileDescriptorSet

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
PACKAGE_DIR = Path("zkgrid") / "settlement" / "v1"
#: Directories (relative to the output root) whose content is entirely generated.
#: Only ``v1/``: the parent ``zkgrid/settlement/`` holds hand-written code (``convert.py``).
GENERATED_DIRS = (PACKAGE_DIR,)

_INIT_TEXT = {
    PACKAGE_DIR / "__init__.py": (
        '"""zkgrid.settlement.v1: protobuf messages and gRPC stubs generated from\n'
        "proto/zkgrid/settlement/v1/*.proto by scripts/gen_proto.py (``make proto``).\n"
        'Do not edit: regenerate."""\n'
    ),
}


def proto_files() -> list[Path]:
    """The ``.proto`` sources, relative to ``proto/``, sorted."""
    return sorted(p.relative_to(PROTO_ROOT) for p in (PROTO_ROOT / PACKAGE_DIR).glob("*.proto"))


def generate(out: Path) -> list[Path]:
    """Generate every file into ``out`` (the package tree below it); return their paths.

    Stale generated files under ``out/zkgrid/settlement/v1`` are removed first; the
    hand-written files of the parent package are left alone.
    """
    from grpc_tools import protoc

    sources = proto_files()
    if not sources:
        raise SystemExit(f"no .proto files under {PROTO_ROOT / PACKAGE_DIR}")
    target = out / PACKAGE_DIR
    if target.exists():
        for stale in target.iterdir():
            if stale.is_file() and stale.suffix in (".py", ".pyi"):
                stale.unlink()
            elif stale.is_dir() and stale.name == "__pycache__":
                shutil.rmtree(stale)
    target.mkdir(parents=True, exist_ok=True)
    well_known = resources.files("grpc_tools") / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        descriptor_set = Path(tmp) / "descriptors.pb"
        args = [
            "grpc_tools.protoc",
            f"-I{PROTO_ROOT}",
            f"-I{well_known}",
            f"--python_out={out}",
            f"--pyi_out={out}",
            f"--grpc_python_out={out}",
            f"--descriptor_set_out={descriptor_set}",
            *(str(PROTO_ROOT / s) for s in sources),
        ]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
        files = FileDescriptorSet.FromString(descriptor_set.read_bytes()).file
    for file in files:
        stub = grpc_stub_text(file, files)
        (out / (file.name.removesuffix(".proto") + "_pb2_grpc.pyi")).write_text(
            stub, encoding="utf-8"
        )
    for rel, text in _INIT_TEXT.items():
        (out / rel).write_text(text, encoding="utf-8")
    return sorted(generated_files(out))


def _module(proto_name: str) -> str:
    return proto_name.removesuffix(".proto").replace("/", ".") + "_pb2"


def _alias(proto_name: str) -> str:
    return proto_name.removesuffix(".proto").rsplit("/", 1)[-1] + "_pb2"


def grpc_stub_text(file: Any, files: Any) -> str:
    """A typed ``*_pb2_grpc.pyi`` for one file's services (grpc-stubs' generic callables)."""
    owner: dict[str, str] = {}
    for f in files:
        for message in f.message_type:
            owner[f".{f.package}.{message.name}"] = f.name
    imports: set[str] = set()
    lines: list[str] = []

    def ref(type_name: str) -> str:
        source = owner[type_name]
        imports.add(source)
        return f"{_alias(source)}.{type_name.rsplit('.', 1)[-1]}"

    for service in file.service:
        lines += ["", "", f"class {service.name}Stub:"]
        lines.append("    def __init__(self, channel: grpc.Channel) -> None: ...")
        for m in service.method:
            kind = ("Stream" if m.client_streaming else "Unary") + (
                "Stream" if m.server_streaming else "Unary"
            )
            lines.append(
                f"    {m.name}: grpc.{kind}MultiCallable[{ref(m.input_type)}, {ref(m.output_type)}]"
            )
        lines += ["", "", f"class {service.name}Servicer:"]
        for m in service.method:
            request = ref(m.input_type)
            if m.client_streaming:
                request = f"collections.abc.Iterator[{request}]"
            response = ref(m.output_type)
            if m.server_streaming:
                response = f"collections.abc.Iterator[{response}]"
            lines.append(
                f"    def {m.name}(self, request: {request}, context: grpc.ServicerContext)"
                f" -> {response}: ..."
            )
        lines += [
            "",
            "",
            f"def add_{service.name}Servicer_to_server("
            f"servicer: {service.name}Servicer, server: grpc.Server) -> None: ...",
        ]
    header = [
        f"# Generated by scripts/gen_proto.py from {file.name}. DO NOT EDIT!",
        '"""Typed stubs of the gRPC client and server classes (see the .py module)."""',
        "",
        "import collections.abc",
        "",
        "import grpc",
        "",
        *(f"from {_module(n).rsplit('.', 1)[0]} import {_alias(n)}" for n in sorted(imports)),
    ]
    if not file.service:
        header.remove("import collections.abc")
        header.remove("")
    return "\n".join(header + lines) + "\n"


def generated_files(root: Path) -> list[Path]:
    """Every generated file currently under ``root`` (relative paths)."""
    found: list[Path] = []
    for directory in GENERATED_DIRS:
        base = root / directory
        if base.is_dir():
            found.extend(
                p.relative_to(root)
                for p in base.iterdir()
                if p.is_file() and p.suffix in (".py", ".pyi")
            )
    return sorted(found)


def diff(committed_root: Path) -> list[str]:
    """Regenerate into a temporary directory; list the files that differ from ``committed_root``."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh_root = Path(tmp)
        fresh = set(generate(fresh_root))
        committed = set(generated_files(committed_root))
        problems = [f"missing (not committed): {p}" for p in sorted(fresh - committed)]
        problems += [f"stale (no longer generated): {p}" for p in sorted(committed - fresh)]
        for rel in sorted(fresh & committed):
            if (fresh_root / rel).read_bytes() != (committed_root / rel).read_bytes():
                problems.append(f"differs from a fresh generation: {rel}")
        return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=ROOT, help="output root (default: repository)")
    parser.add_argument(
        "--check", action="store_true", help="do not write; exit 1 if the committed files drift"
    )
    args = parser.parse_args(argv)
    if args.check:
        problems = diff(args.out)
        for line in problems:
            print(line, file=sys.stderr)
        return 1 if problems else 0
    for path in generate(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
