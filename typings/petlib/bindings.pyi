from typing import Any

_C: Any
_FFI: Any
