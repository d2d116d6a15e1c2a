"""Regenerate tests/vectors/market_delivery/: delivery steps with real circuit proofs and
sealed openings decryptable with a stored test key.

    .venv/bin/python tests/vectors/market_delivery/make_market_delivery_vectors.py

``delivery.json``: one interval of a market day. A seller ``S`` (export 5000 Wh) sells
to three buyers in four trades; every trade's allocation (D2) and delivery (D3) step as
the commitments, the public quantity and the proof (hex), with the openings the steps
were proven from (test data, public here), so the test can check that each output opens
to the plain min chain. ``sealed.json``: the openings of two of those steps sealed to
stored test keys with a fixed ephemeral key and nonce (D7)-(D9), so a regeneration of
the box from the stored inputs must give the same bytes.

``tests/unit/settlement/test_market_circuits.py`` and ``test_sealed.py`` check that
every stored proof still verifies (docs/notes/market.md) and every box still opens:
later versions of zkgrid must keep verifying these bytes. Do not regenerate them to make
a failing test pass (a failure means the proof system, the circuits, the context or the
box format changed, and stored steps would stop verifying). The proofs are randomized: a
regeneration gives other proof bytes with the same meaning.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: import the repository's packages
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from settlement.market_circuits import (
    ALLOCATION,
    DELIVERY,
    delivery_context,
    prove_allocation,
    prove_delivery,
)
from settlement.sealed import EncryptionKey, seal
from zkp.group import ORDER
from zkp.pedersen import commit

HERE = Path(__file__).parent
#: The interval: the seller's export, the buyers' imports, the trades (buyer, q) in order.
EXPORT = 5000
IMPORTS = {"B1": 1800, "B2": 4000, "B3": 300}
TRADES = [("B1", 1500), ("B2", 2500), ("B3", 700), ("B1", 2000)]


def scalar(label: str) -> int:
    """A deterministic nonzero scalar (test data only)."""
    digest = hashlib.sha256(b"zkgrid/test-vectors/market-delivery " + label.encode()).digest()
    return int.from_bytes(digest, "big") % (ORDER - 1) + 1


def trade_id(k: int) -> bytes:
    return hashlib.sha256(b"zkgrid/test-vectors/market-delivery trade %d" % k).digest()


def opening(value: int, blinding: int) -> dict[str, Any]:
    return {"value": value, "blinding": f"{blinding:064x}"}


def delivery_vectors() -> list[dict[str, Any]]:
    export = (EXPORT, scalar("export S"))
    export_c = commit(*export)
    imports = {b: (v, scalar(f"import {b}")) for b, v in IMPORTS.items()}
    delivered: list[tuple[str, bytes, tuple[int, int]]] = []  # buyer, D_k, its opening
    vectors = []
    for k, (buyer, quantity) in enumerate(TRADES):
        tid = trade_id(k)
        s_earlier = [(c, o) for _, c, o in delivered]
        b_earlier = [(c, o) for b, c, o in delivered if b == buyer]
        a_value = min(quantity, EXPORT - sum(o[0] for _, o in s_earlier))
        alloc = prove_allocation(
            tid, export_c, export, [c for c, _ in s_earlier], [o for _, o in s_earlier],
            quantity, blinding=scalar(f"allocation {k}"),
        )  # fmt: skip
        vectors.append(
            {
                "name": f"trade {k}: allocation with {len(s_earlier)} earlier",
                "step": ALLOCATION,
                "trade_id": tid.hex(),
                "quantity": quantity,
                "export": export_c.to_bytes().hex(),
                "export_opening": opening(*export),
                "earlier": [c.hex() for c, _ in s_earlier],
                "earlier_openings": [opening(*o) for _, o in s_earlier],
                "output": alloc.commitment.hex(),
                "output_opening": opening(a_value, alloc.blinding),
                "proof": alloc.proof.hex(),
            }
        )
        import_c = commit(*imports[buyer])
        d_value = min(a_value, imports[buyer][0] - sum(o[0] for _, o in b_earlier))
        step = prove_delivery(
            tid, alloc.commitment, (a_value, alloc.blinding), import_c, imports[buyer],
            [c for c, _ in b_earlier], [o for _, o in b_earlier],
            blinding=scalar(f"delivery {k}"),
        )  # fmt: skip
        vectors.append(
            {
                "name": f"trade {k}: delivery to {buyer} with {len(b_earlier)} earlier",
                "step": DELIVERY,
                "trade_id": tid.hex(),
                "allocation": alloc.commitment.hex(),
                "allocation_opening": opening(a_value, alloc.blinding),
                "import": import_c.to_bytes().hex(),
                "import_opening": opening(*imports[buyer]),
                "earlier": [c.hex() for c, _ in b_earlier],
                "earlier_openings": [opening(*o) for _, o in b_earlier],
                "output": step.commitment.hex(),
                "output_opening": opening(d_value, step.blinding),
                "proof": step.proof.hex(),
            }
        )
        delivered.append((buyer, step.commitment, (d_value, step.blinding)))
    return vectors


def sealed_vectors(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for name, step, recipient in (("allocation of trade 0, to B1", steps[0], "B1"),
                                  ("delivery of trade 3, to S", steps[7], "S")):  # fmt: skip
        key = EncryptionKey.from_private_bytes(scalar(f"encryption key {recipient}").to_bytes(32))
        ephemeral = EncryptionKey.from_private_bytes(scalar(f"ephemeral {name}").to_bytes(32))
        nonce = hashlib.sha256(b"nonce " + name.encode()).digest()[:12]
        context = delivery_context(bytes.fromhex(step["trade_id"]), step["step"])
        value = step["output_opening"]["value"]
        blinding = int(step["output_opening"]["blinding"], 16)
        box = seal(value, blinding, key.public_key, context, ephemeral=ephemeral, nonce=nonce)
        out.append(
            {
                "name": name,
                "recipient_private_key": key.private_bytes().hex(),
                "recipient_public_key": key.public_key.hex(),
                "ephemeral_private_key": ephemeral.private_bytes().hex(),
                "nonce": nonce.hex(),
                "associated_data": context.hex(),
                "commitment": step["output"],
                "opening": step["output_opening"],
                "box": box.hex(),
            }
        )
    return out


def main() -> None:
    steps = delivery_vectors()
    (HERE / "delivery.json").write_text(
        json.dumps({"version": 1, "vectors": steps}, indent=1) + "\n"
    )
    (HERE / "sealed.json").write_text(
        json.dumps({"version": 1, "vectors": sealed_vectors(steps)}, indent=1) + "\n"
    )


if __name__ == "__main__":
    main()
