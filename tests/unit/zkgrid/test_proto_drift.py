"""The committed generated code of the settlement API equals a fresh ``make proto``."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[3]


def _gen_proto() -> ModuleType:
    spec = importlib.util.spec_from_file_location("zkgrid_gen_proto", ROOT / "scripts/gen_proto.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return module


def test_generated_code_matches_proto_sources() -> None:
    problems = _gen_proto().diff(ROOT)
    assert not problems, "generated code drifted; run `make proto` and commit:\n" + "\n".join(
        problems
    )


def test_generated_modules_import_from_the_package() -> None:
    from zkgrid.settlement.v1 import (
        bills_pb2_grpc,
        ledger_pb2,
        ledger_pb2_grpc,
        meters_pb2_grpc,
        readings_pb2_grpc,
        tariffs_pb2_grpc,
    )

    assert ledger_pb2.DESCRIPTOR.package == "zkgrid.settlement.v1"
    for module in (
        bills_pb2_grpc,
        ledger_pb2_grpc,
        meters_pb2_grpc,
        readings_pb2_grpc,
        tariffs_pb2_grpc,
    ):
        assert any(name.endswith("ServiceStub") for name in vars(module))


def test_generator_owns_only_v1(tmp_path: Path) -> None:
    """The hand-written ``zkgrid/settlement/convert.py`` is neither stale output nor overwritten."""
    gen = _gen_proto()
    assert Path("zkgrid/settlement/convert.py") not in gen.generated_files(ROOT)
    assert all(p.parent == Path("zkgrid/settlement/v1") for p in gen.generated_files(ROOT))
    parent = tmp_path / "zkgrid" / "settlement"
    parent.mkdir(parents=True)
    (parent / "convert.py").write_text("# hand-written\n", encoding="utf-8")
    written = gen.generate(tmp_path)
    assert (parent / "convert.py").read_text(encoding="utf-8") == "# hand-written\n"
    assert not (parent / "__init__.py").exists()
    assert Path("zkgrid/settlement/v1/__init__.py") in written
