"""Fuzz every decoder: any exception outside ``zkgrid.errors.ZkgridError`` fails (issue 10, §3).

Each test builds real, valid encodings once (deterministically: seeded proofs, RFC 6979
ECDSA, Ed25519 and BLS are deterministic), then feeds the decoder mutations of them and
pure random bytes (``tests/property/fuzz_support.py``). Hypothesis runs derandomized and
without an example database, so CI replays the same inputs every time; the example
counts keep this module and the gRPC one (``tests/adversarial/
test_grpc_malformed_requests.py``) within the CI time budget.

Covered: ``zkp.group`` (points, scalars, point lists), ``zkp.pedersen.Commitment``,
``zkp.rangeproof.RangeProof``, ``zkp.sigma`` (opening, bill, equality proofs),
``settlement.records`` (every record's ``decode`` and ``decode_record``),
``ledger.entries.decode_entry``, ``ledger.archive.ArchiveReader`` (random bytes, every
truncation, mutations, seekable or not, a checkpoint whose size has 5,000 digits) and the
auditor on such archives, ``ledger.checkpoint`` (``SignedCheckpoint.from_text``,
``parse_verifier_key``, ``verify_checkpoint``), the Merkle verifiers, ``ledger.cosignature``
(``WitnessRegistration.decode``, ``Cosignature.decode``, ``CosignedCheckpoint.decode``,
``Quorum.parse``), the meter client's receipt check and ``meter.readings``.

The parsers found on the way (the readings CSV's huge integers, listen ports with
non-ASCII digits, the auditor's state file and the meter's registration request
nested too deep or holding a 5,000-digit integer) are tested below at their fixes.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import sys
import tempfile
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.message import DecodeError
from hypothesis import given
from hypothesis import strategies as st

from circuits.r1cs import R1CSProof
from ledger.archive import (
    MAGIC,
    ArchiveCheckpoint,
    ArchiveEntry,
    ArchiveFormatError,
    ArchiveReader,
    ArchiveTruncatedError,
    write_archive,
)
from ledger.checkpoint import (
    Checkpoint,
    CheckpointSigner,
    SignedCheckpoint,
    parse_verifier_key,
    verify_checkpoint,
)
from ledger.cosignature import (
    Cosignature,
    CosignedCheckpoint,
    Quorum,
    WitnessRegistration,
)
from ledger.entries import Entry, EntryKind, decode_entry, encode_entry
from ledger.errors import LedgerFormatError
from ledger.merkle import (
    inclusion_proof_from_leaves,
    leaf_hash,
    root,
    verify_consistency,
    verify_inclusion,
)
from meter.cli import _parse_registration as parse_registration_request
from meter.client import verify_receipt
from meter.readings import (
    DayReadings,
    ReadingsFormatError,
    format_readings_csv,
    parse_readings_csv,
)
from service.config import ConfigError, split_listen
from settlement import sealed
from settlement.records import (
    RECORD_TYPES,
    Bill,
    CycleBill,
    ReadingBatch,
    decode_record,
)
from tests.property.fuzz_support import (
    LOG_KEY,
    MINUTES,
    ORIGIN,
    PERIOD,
    SIGNER,
    fuzz_bytes,
    fuzz_settings,
    fuzz_text,
    records,
    typed_or_accepted,
    witness_material,
)
from verifier.cli import main as audit_main
from verifier.state import StateError, load_state
from zkgrid.errors import InvalidArgumentError
from zkgrid.settlement.v1 import common_pb2
from zkp.drbg import SeededScalars
from zkp.generators import G, pedersen_h
from zkp.group import (
    FIELD_PRIME,
    ORDER,
    decode_point,
    decode_points,
    decode_scalar,
    encode_point,
    encode_scalar,
)
from zkp.pedersen import Commitment, commit
from zkp.rangeproof import RangeProof
from zkp.sigma import EqualityProof, LinearCombinationProof, OpeningProof

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "rangeproof_v1.json"


# ----------------------------------------------------------------------------- real seeds


@cache
def range_proof_seeds() -> tuple[bytes, ...]:
    vectors = json.loads(VECTORS.read_text())["vectors"]
    batch = next(r for r in records() if isinstance(r, ReadingBatch))
    return (*(bytes.fromhex(v["proof_hex"]) for v in vectors), batch.range_proof)


@cache
def sigma_seeds() -> dict[str, bytes]:
    c1, c2 = commit(42, 7), commit(42, 99)
    opening = OpeningProof.prove(c1, 42, 7, b"ctx", rng=SeededScalars(b"fuzz/opening"))
    equality = EqualityProof.prove(c1, c2, 7, 99, b"ctx", rng=SeededScalars(b"fuzz/eq"))
    bill = next(r for r in records() if isinstance(r, Bill))
    return {"opening": opening.to_bytes(), "equality": equality.to_bytes(), "bill": bill.proof}


@cache
def point_seeds() -> tuple[bytes, ...]:
    batch = next(r for r in records() if isinstance(r, ReadingBatch))
    edge = [
        b"\x02" + (FIELD_PRIME - 1).to_bytes(32, "big"),
        b"\x03" + bytes(32),
        b"\x04" + bytes(32),
    ]
    return (encode_point(G), encode_point(pedersen_h()), *batch.commitments[:4], *edge)


SCALAR_SEEDS = (
    *(encode_scalar(x) for x in (0, 1, ORDER - 1, 2**255, 0x1234567890ABCDEF)),
    ORDER.to_bytes(32, "big"),
    b"\xff" * 32,
)


def _signed_note(size_text: str, root_bytes: bytes) -> str:
    """A log-signed note whose size line is ``size_text`` verbatim (valid signature)."""
    body = f"{ORIGIN}\n{size_text}\n{base64.b64encode(root_bytes).decode()}\n"
    return body + "\n" + SIGNER.sign_text(body.encode()).line()


#: A checkpoint whose size line has 5,000 digits, correctly signed by the log key.
HUGE_SIZE_NOTE = _signed_note("9" * 5_000, bytes(32))


@cache
def archive_seed() -> bytes:
    """A real small archive: every record as an entry, a checkpoint after each, and the head."""
    entries = [(i, int(r.KIND), r.encode()) for i, r in enumerate(records())]
    hashes_ = [leaf_hash(encode_entry(EntryKind(kind), payload)) for _, kind, payload in entries]
    checkpoints = [
        (n, SIGNER.sign(Checkpoint(ORIGIN, n, root(hashes_[:n]))).to_text())
        for n in range(1, len(entries) + 1)
    ]
    out = io.BytesIO()
    write_archive(out, ORIGIN, entries, checkpoints[:-1], checkpoints[-1][1])
    return out.getvalue()


@cache
def archive_with_huge_checkpoint() -> bytes:
    """The seed archive with a checkpoint frame whose signed note has a 5,000-digit size."""
    entries = [(i, int(r.KIND), r.encode()) for i, r in enumerate(records())]
    out = io.BytesIO()
    write_archive(out, ORIGIN, entries, [(2, HUGE_SIZE_NOTE)], HUGE_SIZE_NOTE)
    return out.getvalue()


# ----------------------------------------------------------------------------- zkp


@fuzz_settings(80)
@given(st.deferred(lambda: fuzz_bytes(point_seeds(), max_random=40)))
def test_points_and_commitments(data: bytes) -> None:
    typed_or_accepted(decode_point, data)
    typed_or_accepted(Commitment.from_bytes, data)
    typed_or_accepted(Commitment.many_from_bytes, data)
    typed_or_accepted(decode_points, [data, data[:33]])


@fuzz_settings(100)
@given(fuzz_bytes(SCALAR_SEEDS, max_random=40))
def test_scalars(data: bytes) -> None:
    value = typed_or_accepted(decode_scalar, data)
    if value is not None:
        assert encode_scalar(value) == data


@fuzz_settings(100)
@given(st.deferred(lambda: fuzz_bytes(range_proof_seeds(), max_random=1024, max_mutations=3)))
def test_range_proofs(data: bytes) -> None:
    proof = typed_or_accepted(RangeProof.from_bytes, data)
    if proof is not None:
        assert isinstance(proof, RangeProof)
        assert proof.to_bytes() == data
    typed_or_accepted(RangeProof.many_from_bytes, [data, range_proof_seeds()[0]])


@cache
def circuit_seeds() -> tuple[bytes, ...]:
    r1cs = json.loads((Path(__file__).parents[1] / "vectors" / "r1cs_v1.json").read_text())
    bills = json.loads(
        (Path(__file__).parents[1] / "vectors" / "cycle" / "bills.json").read_text()
    )
    proofs = [bytes.fromhex(v["proof_hex"]) for v in r1cs["vectors"]]
    proofs += [CycleBill.decode(bytes.fromhex(v["bill"])).proof for v in bills["vectors"]]
    return tuple(proofs)


@fuzz_settings(100)
@given(st.deferred(lambda: fuzz_bytes(circuit_seeds(), max_random=2048, max_mutations=3)))
def test_circuit_proofs(data: bytes) -> None:
    proof = typed_or_accepted(R1CSProof.from_bytes, data)
    if proof is not None:
        assert isinstance(proof, R1CSProof)
        assert proof.to_bytes() == data


@cache
def sealed_seeds() -> tuple[bytes, ...]:
    vectors = json.loads(
        (Path(__file__).parents[1] / "vectors" / "market_delivery" / "sealed.json").read_text()
    )
    return tuple(bytes.fromhex(v["box"]) for v in vectors["vectors"])


@fuzz_settings(100)
@given(st.deferred(lambda: fuzz_bytes(sealed_seeds(), max_random=256, max_mutations=3)))
def test_sealed_boxes(data: bytes) -> None:
    box = typed_or_accepted(sealed.decode, data)
    if box is not None:
        assert box.encode() == data


@pytest.mark.parametrize("name", ["opening", "equality", "bill"])
@fuzz_settings(80)
@given(data=st.data())
def test_sigma_proofs(name: str, data: st.DataObject) -> None:
    decode: Callable[[bytes], Any] = {
        "opening": OpeningProof.from_bytes,
        "equality": EqualityProof.from_bytes,
        "bill": LinearCombinationProof.from_bytes,
    }[name]
    raw = data.draw(fuzz_bytes(list(sigma_seeds().values()), max_random=128))
    proof = typed_or_accepted(decode, raw)
    if proof is not None:
        assert proof.to_bytes() == raw


# ----------------------------------------------------------------------------- records, entries


def _record_seeds() -> list[bytes]:
    return [r.encode() for r in records()]


@pytest.mark.parametrize("kind", sorted(RECORD_TYPES), ids=lambda k: k.name)
@fuzz_settings(80)
@given(data=st.data())
def test_records(kind: EntryKind, data: st.DataObject) -> None:
    record_type = RECORD_TYPES[kind]
    own = [r.encode() for r in records() if isinstance(r, record_type)]
    raw = data.draw(fuzz_bytes(own * 4 + _record_seeds(), max_random=256))
    record = typed_or_accepted(record_type.decode, raw)
    if record is not None:
        assert record.encode() == raw
    typed_or_accepted(decode_record, Entry(kind, raw))


@fuzz_settings(100)
@given(
    st.deferred(
        lambda: fuzz_bytes(
            [r.to_entry().encode() for r in records()]
            + [witness_material()[0].to_entry().encode()],
            max_random=256,
        )
    )
)
def test_entries(data: bytes) -> None:
    entry = typed_or_accepted(decode_entry, data)
    if isinstance(entry, Entry):
        assert entry.encode() == data
        if entry.kind in RECORD_TYPES:
            typed_or_accepted(decode_record, entry)


# ----------------------------------------------------------------------------- archive


def _verify_with_log_key(text: str) -> Checkpoint:
    return verify_checkpoint(text, LOG_KEY)


def _read_all(data: bytes) -> list[ArchiveEntry | ArchiveCheckpoint]:
    reader = ArchiveReader(io.BytesIO(data))
    return list(reader.items())


class _Pipe(io.RawIOBase):
    """A non-seekable stream (a pipe): the reader reads skipped payloads instead of seeking."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._data.readinto(buffer)


def _consume_archive(data: bytes, skip_below: int = 0, *, pipe: bool = False) -> None:
    """Read an archive the way the auditor does: frames, then each checkpoint and record.

    The reader raises only ArchiveFormatError (or a subclass); each item's content is
    interpreted separately, and may only be refused with a ZkgridError.
    """
    try:
        stream = io.BufferedReader(_Pipe(data)) if pipe else io.BytesIO(data)
        reader = ArchiveReader(stream, skip_payloads_below=skip_below)
        for item in reader.items():
            if isinstance(item, ArchiveCheckpoint):
                typed_or_accepted(_verify_with_log_key, item.text)
                continue
            try:
                kind = EntryKind(item.kind)
            except ValueError:
                continue  # an unknown kind: the auditor's finding, not a decoder's
            typed_or_accepted(decode_entry, encode_entry(kind, item.payload))
            if kind in RECORD_TYPES:
                typed_or_accepted(decode_record, Entry(kind, item.payload))
        typed_or_accepted(_verify_with_log_key, reader.trailer.final_checkpoint)
    except ArchiveFormatError:
        return


def test_the_seed_archive_is_valid() -> None:
    """The fuzz seed is a real archive: every frame reads and every checkpoint verifies."""
    reader = ArchiveReader(io.BytesIO(archive_seed()))
    items = list(reader.items())
    checkpoints = [i for i in items if isinstance(i, ArchiveCheckpoint)]
    assert len(items) - len(checkpoints) == len(records())
    for cp in checkpoints:
        assert verify_checkpoint(cp.text, LOG_KEY).size == cp.size
    assert verify_checkpoint(reader.trailer.final_checkpoint, LOG_KEY).size == len(records())


def test_every_truncation_of_the_archive_is_truncated() -> None:
    data = archive_seed()
    for end in range(len(data)):
        with pytest.raises(ArchiveTruncatedError):
            _read_all(data[:end])


_HEADER = MAGIC + b"\x00\x01" + len(ORIGIN).to_bytes(4, "big") + ORIGIN.encode()


@fuzz_settings(120)
@given(
    st.binary(max_size=256)
    | st.binary(max_size=256).map(lambda b: MAGIC + b)
    | st.binary(max_size=256).map(lambda b: _HEADER + b),
    st.integers(0, 8),
)
def test_archive_random_bytes(data: bytes, skip_below: int) -> None:
    _consume_archive(data, skip_below)


@fuzz_settings(150)
@given(
    st.deferred(
        lambda: fuzz_bytes(
            [archive_seed(), archive_with_huge_checkpoint()], max_random=0, max_mutations=3
        )
    ),
    st.integers(0, 8),
    st.booleans(),
)
def test_archive_mutations(data: bytes, skip_below: int, pipe: bool) -> None:
    _consume_archive(data, skip_below, pipe=pipe)


def test_archive_checkpoint_with_a_5000_digit_size_is_a_format_error() -> None:
    """The reader passes the note through; parsing it is a typed refusal, not ValueError."""
    reader = ArchiveReader(io.BytesIO(archive_with_huge_checkpoint()))
    notes = [i.text for i in reader.items() if isinstance(i, ArchiveCheckpoint)]
    assert notes == [HUGE_SIZE_NOTE]
    for text in (*notes, reader.trailer.final_checkpoint):
        with pytest.raises(LedgerFormatError, match="size"):
            SignedCheckpoint.from_text(text)
        with pytest.raises(LedgerFormatError, match="size"):
            verify_checkpoint(text, LOG_KEY)


def _audit(data: bytes) -> tuple[int, str, str]:
    """``zkgrid audit --archive`` on ``data``: exit code, stdout (JSON), stderr."""
    out, err = io.StringIO(), io.StringIO()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ledger.zkla"
        path.write_bytes(data)
        argv = ["--archive", str(path), "--log-key", LOG_KEY, "--no-state", "--json"]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = audit_main(argv)
    return code, out.getvalue(), err.getvalue()


def test_the_auditor_names_a_5000_digit_checkpoint_size_as_a_violation() -> None:
    """Issue 10 §3 (c): a tampered checkpoint is a violation (exit 1), not "could not run"."""
    assert _audit(archive_seed())[0] == 0
    code, out, err = _audit(archive_with_huge_checkpoint())
    assert (code, err) == (1, "")
    reasons = [v["reason"] for v in json.loads(out)["violations"]]
    assert reasons == ["CHECKPOINT_MALFORMED", "CHECKPOINT_MALFORMED"]


@fuzz_settings(15)
@given(st.deferred(lambda: fuzz_bytes([archive_seed()], max_random=0, max_mutations=2)))
def test_the_auditor_on_tampered_archives(data: bytes) -> None:
    """Exit 0, 1 (violations named) or 2 (an unreadable archive), never an internal error."""
    code, _, err = _audit(data)
    assert code in (0, 1, 2)
    assert "internal error" not in err, err


# ----------------------------------------------------------------------------- checkpoints


def _note_seeds() -> list[str]:
    _, signed, _, _ = witness_material()
    extended = SIGNER.sign(Checkpoint(ORIGIN, 2**64 - 1, bytes(32), ("ext line", "2nd")))
    cosigned = signed.with_signature(
        CheckpointSigner.from_private_bytes("witness", bytes(32)).sign_text(
            signed.checkpoint.body()
        )
    )
    return [signed.to_text(), extended.to_text(), cosigned.to_text(), HUGE_SIZE_NOTE]


@fuzz_settings(120)
@given(st.deferred(lambda: fuzz_text(_note_seeds())))
def test_signed_checkpoint_notes(text: str) -> None:
    signed = typed_or_accepted(SignedCheckpoint.from_text, text)
    if isinstance(signed, SignedCheckpoint):
        assert signed.to_text() == text
    typed_or_accepted(SignedCheckpoint.from_text, text.encode("utf-8", errors="surrogatepass"))
    typed_or_accepted(_verify_with_log_key, text)


@fuzz_settings(100)
@given(
    fuzz_text(
        [LOG_KEY, CheckpointSigner.from_private_bytes("witness", bytes(32)).verifier_key()],
        max_random=96,
    )
)
def test_verifier_keys(text: str) -> None:
    verifier = typed_or_accepted(parse_verifier_key, text)
    if verifier is not None:
        assert verifier.to_text() == text
    typed_or_accepted(lambda key: verify_checkpoint(witness_material()[1], key), text)


# ----------------------------------------------------------------------------- witnesses

# BLS points are decompressed in pure Python (py_ecc): tens to hundreds of ms each.


WITNESS_DECODERS: dict[str, Callable[[bytes], object]] = {
    "registration": WitnessRegistration.decode,
    "cosignature": Cosignature.decode,
    "cosigned": CosignedCheckpoint.decode,
}


def _witness_seed(name: str) -> bytes:
    registration, _, cosignature, cosigned = witness_material()
    return {
        "registration": registration.encode(),
        "cosignature": cosignature.encode(),
        "cosigned": cosigned,
    }[name]


@pytest.mark.parametrize("name", list(WITNESS_DECODERS))
@fuzz_settings(15)
@given(data=st.data())
def test_witness_records_mutated(name: str, data: st.DataObject) -> None:
    raw = data.draw(fuzz_bytes([_witness_seed(name)], max_random=0, max_mutations=2))
    typed_or_accepted(WITNESS_DECODERS[name], raw)


@fuzz_settings(100)
@given(st.binary(max_size=200) | st.binary(max_size=200).map(lambda b: b"\x01" + b))
def test_witness_records_random(data: bytes) -> None:
    for decode in WITNESS_DECODERS.values():
        typed_or_accepted(decode, data)


@fuzz_settings(60)
@given(fuzz_text(["3-of-5", "1-of-1", "1024-of-1024"], max_random=24))
def test_quorums(text: str) -> None:
    quorum = typed_or_accepted(Quorum.parse, text)
    if quorum is not None:
        assert str(quorum) == text


# ----------------------------------------------------------------------------- Merkle proofs


_HASHES = st.binary(min_size=32, max_size=32)
_NOT_QUITE_HASHES = _HASHES | _HASHES | _HASHES | st.binary(max_size=40)


@st.composite
def _proof_nodes(draw: st.DrawFn) -> list[bytes]:
    return draw(st.lists(_NOT_QUITE_HASHES, max_size=40))


_TREE_INTS = st.integers(-2, 70) | st.integers(2**63, 2**66) | st.sampled_from([2**64 - 1])


@fuzz_settings(60)
@given(_TREE_INTS, _TREE_INTS, _proof_nodes(), _NOT_QUITE_HASHES, _NOT_QUITE_HASHES)
def test_merkle_verifiers(a: int, b: int, proof: list[bytes], node: bytes, other: bytes) -> None:
    """Proof nodes and sizes as a hostile server sends them (ledger.merkle, L8, L10)."""
    typed_or_accepted(lambda p: verify_inclusion(node, a, b, p, other), proof)
    typed_or_accepted(lambda p: verify_consistency(a, b, p, node, other), proof)


# ----------------------------------------------------------------------------- receipts


@cache
def _receipt_seeds() -> tuple[tuple[Entry, bytes], ...]:
    """A real receipt (serialised common_pb2.Receipt) for each entry of a small tree."""
    entries = [r.to_entry() for r in records()]
    leaves = [e.leaf_hash() for e in entries]
    signed = SIGNER.sign(Checkpoint(ORIGIN, len(leaves), root(leaves))).to_text()
    out = []
    for i, entry in enumerate(entries):
        receipt = common_pb2.Receipt(
            ledger_index=i,
            leaf_hash=leaves[i],
            checkpoint=signed,
            tree_size=len(leaves),
            inclusion_proof=inclusion_proof_from_leaves(i, leaves),
        )
        out.append((entry, receipt.SerializeToString()))
    return tuple(out)


@st.composite
def _hostile_receipts(draw: st.DrawFn, seed: bytes) -> common_pb2.Receipt:
    """A real receipt with one to three fields changed, or its bytes mutated."""
    if draw(st.integers(0, 3)) == 0:
        try:
            return common_pb2.Receipt.FromString(draw(fuzz_bytes([seed], 0, 3)))
        except DecodeError:
            return common_pb2.Receipt()  # the gRPC layer refuses it: an empty receipt instead
    receipt = common_pb2.Receipt.FromString(seed)
    for _ in range(draw(st.integers(1, 3))):
        field = draw(st.sampled_from(["index", "leaf", "checkpoint", "size", "proof"]))
        if field in ("index", "size"):
            value = draw(
                st.sampled_from([0, 1, 4, 5, 2**63, 2**64 - 1]) | st.integers(0, 2**64 - 1)
            )
            setattr(receipt, "ledger_index" if field == "index" else "tree_size", value)
        elif field == "leaf":
            receipt.leaf_hash = draw(fuzz_bytes([receipt.leaf_hash], 40, 2))
        elif field == "checkpoint":
            text = draw(fuzz_text([receipt.checkpoint], 200, 2))
            receipt.checkpoint = text.encode("utf-8", "replace").decode("utf-8")
        else:
            nodes = list(receipt.inclusion_proof) or [bytes(32)]
            at = draw(st.integers(0, len(nodes) - 1))
            op = draw(st.sampled_from(["drop", "duplicate", "change", "swap"]))
            if op == "drop":
                del nodes[at]
            elif op == "duplicate":
                nodes.insert(at, nodes[at])
            elif op == "change":
                nodes[at] = draw(fuzz_bytes([nodes[at]], 40, 2))
            else:
                nodes.reverse()
            receipt.ClearField("inclusion_proof")
            receipt.inclusion_proof.extend(nodes)
    return receipt


@fuzz_settings(80)
@given(st.integers(0, len(RECORD_TYPES) - 1), st.booleans(), st.data())
def test_meter_receipts(which: int, pinned: bool, data: st.DataObject) -> None:
    """A hostile server's receipt: the meter client refuses it with a ReceiptError, never a
    bare exception (issue 10 §3: the receipt check catches only LedgerError)."""
    entry, seed = _receipt_seeds()[which]
    receipt = data.draw(_hostile_receipts(seed))
    key = LOG_KEY if pinned else None
    typed_or_accepted(lambda r: verify_receipt(r, entry.kind, entry.payload, key), receipt)


# ----------------------------------------------------------------------------- readings CSV


@cache
def _csv_seed(minutes: int = MINUTES) -> str:
    t = 1440 // minutes
    readings = DayReadings(
        PERIOD, minutes, tuple(100 * i for i in range(t)), tuple(7 * i for i in range(t))
    )
    return format_readings_csv(readings)


@fuzz_settings(100)
@given(st.sampled_from([MINUTES, 15, 60]), st.data())
def test_readings_csv(minutes: int, data: st.DataObject) -> None:
    """Mostly the seed of the parser's own interval (96 rows at 15 minutes), mutated."""
    seeds = [_csv_seed(minutes), _csv_seed(minutes), _csv_seed(MINUTES)]
    text = data.draw(fuzz_text(seeds, max_random=300, max_mutations=3, digits=False))
    typed_or_accepted(lambda t: parse_readings_csv(t, minutes), text)


@pytest.mark.parametrize("digits", [4_301, 5_000])
@pytest.mark.parametrize("column", ["import_wh", "export_wh"])
def test_readings_csv_value_of_more_than_4300_digits_is_too_large(digits: int, column: str) -> None:
    lines = _csv_seed().splitlines()
    fields = lines[1].split(",")
    fields[1 if column == "import_wh" else 2] = "1" * digits
    lines[1] = ",".join(fields)
    with pytest.raises(ReadingsFormatError, match="too large") as info:
        parse_readings_csv("\n".join(lines) + "\n", MINUTES)
    assert info.value.column == column
    assert info.value.line == 2


# ----------------------------------------------------------------------------- other parsers
# Found while fuzzing: parsers outside the list above that convert unbounded text.


@contextlib.contextmanager
def _recursion_limit(limit: int) -> Iterator[None]:
    """CPython's default limit, whatever the test process's imports raised it to (py_ecc
    raises it to 100,000 on import; then json.loads of 200,000 nested arrays overflows the
    C stack, SIGSEGV, instead of raising RecursionError)."""
    saved = sys.getrecursionlimit()
    sys.setrecursionlimit(limit)
    try:
        yield
    finally:
        sys.setrecursionlimit(saved)


@pytest.mark.parametrize(
    "listen",
    [
        "127.0.0.1:\u00b2",  # str.isdigit() accepts superscript two; int() does not
        "127.0.0.1:" + "1" * 5_000,
        "127.0.0.1:\u0661\u0662",  # Arabic-Indic digits: parsed as port 12 today
        "127.0.0.1:65536",
        "127.0.0.1:-1",
        "127.0.0.1:",
    ],
)
def test_listen_addresses_with_bad_ports_are_config_errors(listen: str) -> None:
    with pytest.raises(ConfigError):
        split_listen(listen)


def test_auditor_state_file_with_a_5000_digit_integer_is_a_state_error(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text('{"checkpoint": ' + "1" * 5_000 + "}")
    path.chmod(0o600)
    with pytest.raises(StateError):
        load_state(path)


def test_auditor_state_file_nested_too_deep_is_a_state_error(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("[" * 5_000 + "]" * 5_000)
    path.chmod(0o600)
    with _recursion_limit(1_000), pytest.raises(StateError):
        load_state(path)


def test_meter_registration_request_nested_too_deep_is_refused() -> None:
    """The request file a prosumer hands the utility (``zkgrid meter register --submit``)."""
    text = '{"record": ' + "[" * 5_000 + "]" * 5_000 + "}"
    with _recursion_limit(1_000), pytest.raises(InvalidArgumentError):
        parse_registration_request(text)


# The seeds themselves must be what they claim: valid, accepted encodings.


def test_the_seeds_are_valid_encodings() -> None:
    for record in records():
        assert type(record).decode(record.encode()) == record
        assert decode_record(record.to_entry()) == record
    for proof in range_proof_seeds():
        assert RangeProof.from_bytes(proof).to_bytes() == proof
    assert OpeningProof.from_bytes(sigma_seeds()["opening"]).to_bytes() == sigma_seeds()["opening"]
    registration, signed, cosignature, cosigned = witness_material()
    assert WitnessRegistration.decode(registration.encode()) == registration  # verifies the PoP
    assert Cosignature.decode(cosignature.encode()) == cosignature
    assert CosignedCheckpoint.decode(cosigned).encode() == cosigned
    assert verify_checkpoint(signed.to_text(), LOG_KEY) == signed.checkpoint
    assert parse_readings_csv(_csv_seed(), MINUTES).period == PERIOD
