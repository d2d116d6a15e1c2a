"""The one C extension, zkp._native (zkp/_native.c): the verifier's O(N) scalar vectors
mod q and msm scalars into OpenSSL BIGNUMs (docs/notes/batch-verification.md, B5).

It needs only a C compiler and the Python headers. Everything else about the
package is in pyproject.toml.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "zkp._native",
            sources=["zkp/_native.c"],
            extra_compile_args=["-O3", "-std=c11", "-Wall", "-Wextra"],
        )
    ]
)
