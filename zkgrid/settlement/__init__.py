"""Generated code of the zkgrid settlement API (scripts/gen_proto.py; do not edit)."""
