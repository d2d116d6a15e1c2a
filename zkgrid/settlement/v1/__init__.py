"""zkgrid.settlement.v1: protobuf messages and gRPC stubs generated from
proto/zkgrid/settlement/v1/*.proto by scripts/gen_proto.py (``make proto``).
Do not edit: regenerate."""
