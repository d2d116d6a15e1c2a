"""Nothing-up-my-sleeve generators, derived once and cached.

Every generator except the P-256 base point is :func:`zkp.group.hash_to_point`
of a versioned, labelled string (docs/notes/notation.md lists them):

* ``G``: the P-256 base point (values are committed on it);
* ``H = hash_to_point(b"zkgrid/pedersen/H v1")`` (blindings);
* ``U = hash_to_point(b"zkgrid/bulletproofs/U v1")`` (inner-product term);
* ``G_i = hash_to_point(b"zkgrid/bulletproofs/G/" + str(i) + b" v1")``,
  ``H_i = hash_to_point(b"zkgrid/bulletproofs/H/" + str(i) + b" v1")`` for i = 0, 1, ...

Deriving the 8,192 pairs of a 192-value 32-bit proof costs about 3 s of CPU (the 131,072
pairs of the largest circuit proof, about 45 s), so the vector generators are cached twice
(notation.md, "Generator cache"):

* per process: a pair is derived (or loaded) at most once;
* on disk, in blocks of :data:`BLOCK_PAIRS` pairs, in the user's cache directory
  (:func:`cache_dir`), so a new process (a ``spawn`` worker of the auditor or the
  service, every CLI call) loads them instead of deriving them. A block is used
  only when its SHA-256 equals the digest pinned in this module
  (:data:`PINNED_BLOCK_DIGESTS`, which ``tests/unit/zkp/test_generators.py``
  re-derives); a missing, truncated, altered or foreign cache is ignored (the
  pairs are derived) and rewritten, and only blocks matching their pin are ever
  written. The cache can therefore never change a generator.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import sys
import threading
from functools import cache
from pathlib import Path

from petlib.ec import EcPt

from zkp.group import BASE_POINT, GROUP, Point, hash_to_point

__all__ = [
    "BLOCK_PAIRS",
    "CACHE_ENV",
    "PINNED_BLOCK_DIGESTS",
    "G",
    "block_digest",
    "bp_generators",
    "bp_label",
    "cache_dir",
    "ipa_u",
    "pedersen_h",
]

G: Point = BASE_POINT


@cache
def pedersen_h() -> Point:
    """``H``: the blinding generator of every Pedersen commitment."""
    return hash_to_point(b"zkgrid/pedersen/H v1")


@cache
def ipa_u() -> Point:
    """``U``: the generator carrying <a, b> in the inner product argument."""
    return hash_to_point(b"zkgrid/bulletproofs/U v1")


def bp_label(kind: str, index: int) -> bytes:
    """The label of the index-th Bulletproofs vector generator (kind "G" or "H")."""
    return b"zkgrid/bulletproofs/%s/%d v1" % (kind.encode(), index)


# --------------------------------------------------------------------------- the disk cache

#: Generator pairs (G_i, H_i) per cached block.
BLOCK_PAIRS = 1024
#: Environment variable naming the cache directory; set to "" to disable the disk cache.
CACHE_ENV = "ZKGRID_CACHE_DIR"
_UNCOMPRESSED = 4  # SEC1 0x04 || x || y: decoding needs no square root (8x faster)
_POINT_BYTES = 65
_BLOCK_BYTES = BLOCK_PAIRS * 2 * _POINT_BYTES
_MAGIC = b"zkgrid generator cache v1\n"
_DOMAIN = b"zkgrid/generator-cache v1"
_FILE = "generators-v1.bin"

#: SHA-256 of each block (``block_digest``) as derived from the labels above: pairs
#: [1024*j, 1024*(j+1)) for block j, up to 131,072 pairs (64-bit proofs of 256 values, and
#: circuit proofs of up to 2^17 multiplication gates: a 31-day demand-charge bill).
PINNED_BLOCK_DIGESTS: tuple[str, ...] = (
    'a316ad645c169ff4ecc571ceb2fea668b06d6fa7ad66ed1b33b5ff8551b41de8',
    'a8ef07244d6c42a6228e1b6284f47f3fb5297e578ef1a6633d76fc18a593ecb2',
    'db8b62d64e0e1de96254fe78f96d98109453e7823ab8d15b0b8971c2ef61f46b',
    '1104afdd902cdd4fe86eaae8a808f456b48c12b677508b31f6e0f93ad683d358',
    '82fcde06d32beadff26a95dded75b8d987fe85a73204de535d0c7996e09e61e1',
    'd038a31e357891412826d711190b517f95794baac7fc7bfb27ef8c5499d7b0a1',
    'eadc09e6d6c0d8a665b0e36c640aaa7d45712c848e47ddb4da5fea291c9413ff',
    '259d2de046c44ec2079705faee3f0f46a73a7e3018dcd959730ad3c37d6fdd67',
    '1deffc6a104119310336c95fa7ea0538b18767482c114ebdc69ef9a25e6261b9',
    '70e8e156a31d94653c40293b87c2bf7d4563446313c854576cbb8be1dc83c8a9',
    '2f40f31f2c3c6bba0436f0df0bc22cc8e4f080ea7e0207018fe15568295318fc',
    '18e4bf09cd17159dd52176996bde8e9654ce1cc7eba550ee0dcbd92ff85515c0',
    '50993bc8ad273762b7da4b656165733032f8eaf6016edb55ba7f040b4e0387b0',
    '1274c7b21d69870a3780e9eaea1d149ba66d2902a5771d9cfcf52f24b87632c7',
    'd68b7536cb713e44394fb01958f6ee3094b9be499194985d4cb68d8a1555df80',
    '3c0689052328098a1f9787ee06d2fe0eaf46bcbb9312575c5b1f9601ad28d442',
    'b2a1065637d13ff318cbc392635b9d3b9902c97ce931aeb8d8cbc2eb7cb07bad',
    'fd95f03507f64d618cb752cdb8ecf3ae1576af5df9a11f349e8ad171a0dbef04',
    'bab48b89d17227f154051abe18ddad15a20d730de47dd77d4c0407777fecfa22',
    '79f385406477a172a7706cace6bf43a9ce78d61cafbd195a9f5a09cbb0cf2b21',
    'f870b595aac2699b662bb025f9b33d59e1f14984d56b63df081c0357ed77f40b',
    '289edfa79059c24d7ae606315358db1ad725a7ee6638f3d04feb682c7db12155',
    '2593e28036f56c8782280985f2bed830b5ff5a0d2be979ff6094197b3bd09d3c',
    'd65633da080545b21195b6c026762aeedd4cd95368c8fd569930dbd5c6ce080b',
    '267e970a345a807a752dadf51ef7114023a082a4a6cf2accd037d3c015174bb7',
    'cac3519cb762b9c80da851a6a0fb21c666fc443bb19e373f75095a2dffc18a81',
    '3a0760650aab01a090e2e4dc18a62bc208dc656576ea0a8a0225b836ef9284f2',
    'e4e971b05ff3887e8692b9834c7d58c8de8bf158627237d98562798b21733659',
    'e0e447d5a5c1b15918437dca093c826d0dae9a4cc8f980a3dc63b9c11bab03fa',
    '92d938c0f3e1e98cd3a00abe2372848395e5735263088a6e7fcbe94b34614975',
    '681bb0a3292e6ff2dab0efc6c908acfc590d06d0fd41f52d27fa43f60a4f015f',
    'dec4a7deec0d3cbfaeb7cfe38d01594e05f43f89c95300160aaaceedd133cbec',
    'addb329e6eb6b2911b63da310495565fbb94ddaeb3ceba4cdb9c93b9d0fa75ee',
    'ad88fdd665d7a0420371233784b06048a10f1fa3a70df1f47086b612ffc2ac59',
    '1c3522362a526352bba9e7cfc52250ecbba8db0aea91573d9c35b061de0c02d4',
    'bff3ba8ef5f8cc16ffe47051d569ad82a58e7e0b303c8407959800e91cc302af',
    '02fe5f668425a5ab59211f15250bb524ae40c12a40dddf1379b7e4855aa31d45',
    'e7a53bac40f8015125c61213a49aae6eb56b5751b9d4865bc3e32db8d1bdbd06',
    '7c19256684fc6ec70609c9ab3729b2ab1499b101c068f7df4bb756db7e4269ef',
    '8b8e1bae66e2cf8da11f9e33856ef9044efc1710f4c92c2b712a5a4e7f99fcab',
    '3b393f0ed3df72e93d18cba9265c3771ebf0c12bfbe2d44eb6812064aa409d32',
    '7b16601a509527edd3e110238e25133e20fdd09466b72c9c01f25f10b4f39e12',
    'dd1e58db1ea6df960357d3fc1e609eb370496b3b6259b3edd2d59be792cf2c32',
    'd3aa1f9d9b87ddd1d96fc8126023db08f74d2e7b10b64c4780dbbec8ebc55ec2',
    '0ccdfb9d0ab577269789169bb57cc376827f61088be56fdb6dbb68e0e7c90dba',
    'e0b85b3f2c846e1411e9c6ff78b2ab5c5f257f05e077711b697f59f39cdab7b2',
    'a44e7dd4e05b5acf28f3350481d1a84952c8e21923980dafd96bcb27dc526396',
    'c80ae8daec9e6258d906af14e081b9784ab93f0c552cd4c0909d9f419b06ac89',
    '14bb7a6ef2d4c7938d20bfcf5426b42e0d5d6da39f3acacb0e80cccbba63899b',
    '01cd542f493314e2275e6c7a8c84aafeac051344c521c2d79e663e99f0a093df',
    '9cd01531a14fb3e53a37ca8ec0c83e0f08e9c6c0b3c1411a02404c1633dfb962',
    '5ea60e36484cc04897037635e44bb049ce5eed429501dac37b90c18f4d3997e7',
    '38557e14e0de7c038d7b1fdab84ce8b2bc59488e7a0cd8760f26a938323b9cf4',
    '66ba74d0881b96fe68a84f399ab4c24ae2df6d6a0ec10ae75e564230c07cfbfd',
    'd85c73665cf6b28523e6969753b365d62e1bb876a0473b8135f17e37dcd9c33a',
    '8a97a7c746c9ce4de2ce7d98a16e6e1b18815b2dc80a055a83d01b37c403d79f',
    'b4d413bd2fa1fbb3d9a2dab69039fdb17285006c66f48c478e8831277d817f75',
    '5a91005c845ef035acd3ec745538ae0b9dd41b737d2deee7b37cbd11e817748f',
    '0deb546b051002eb76051cedc56ec77ec643c7849c04f3df2b7ca8c41dc6acde',
    '30392703b37bdfc083e53418db689ee95630440ff9b0e932e103383417fa2849',
    'c80d4e790dda53d7d9f809461c8158f93f67751163e98e6f16a5181f68a2f47d',
    '8f626d997617b41540ae3663392833a05f21ea1255c0fa3fd5042ce7098bcb3f',
    '94305987e85d3a54bd805a63739bc05acbb67797e9e2518fb5633215d88afc0e',
    '7da2b53697806f2b39a23a837c39887c2f48023b56da46c24ef0b2e822473caa',
    '70700dd50d3979f0826be256834b3eb2a0b2752e6997e8052530de580a7d8196',
    'ddbe9fc5a96ad4dd3c62a3e047d7d090c218043397cb6f155f5a97e306ceb219',
    '5f236b24ad870e74ecd2fad6e6b264b236c3bcb7064b771d63981d6f1a15e90e',
    '94edb0bbe43f050b294ce8ecae97f0521d27b78e31ec932272fab676e51ca9a7',
    '79e7c6a206209516cf591da1f122b6830fdb5e72ca72eb642efb2fc5e8b5ba8e',
    '490e5264782d5f56506362adac6c4235a55368506bb36f35da7b36c8985d031f',
    '5ff9616039b21ea09a341526c1d079b87fd008ceb5d18353289b90723041bf9f',
    '753ce1cfc627c579b863726cd32dd1a477ba44ae0acca62d0e288231890f0455',
    '9a306ca5ad1cd6bfe4e93e1572974d42be8a729c81712e97969d84ae244e56fa',
    '0b5f10ce80dcfb7eccb14d4c54c8f7314f350315afa9c29e578cb9662bde1e43',
    '7ead197a24f098fe43bd3f10c47b100a37b4dd0131b849f4a778aad7e17938fe',
    'a92991a733624da6120eff5fbcd40a5546fc1def126afb7aea18aa2897785bc9',
    '81933737f6e2e67e24d7fecc2c546d3a826c5ced69a23c40fb0cd2ca6fa2b2dd',
    '8612ea2dfab2fe11d05dcd58fc629ca5f654aa8c3866498ce9e6ce1d425223f3',
    'db9a5cbd4bb674776b386473ff64696e74c463bde1258395a5061e200cb23c64',
    '3c160de771a136ab4ea275132dd0fa9eff9128040847ca8ea5c29aaaac63a81a',
    'e3e8b713a9e86fb33ca57b48ec3f397560852fc231accb4b312d83e86aa7d7c2',
    '6abba80c6f1518e3f989faed20b81b9e681e9c6ceec8a4c7f557060d84031884',
    '9836c3b930c1f8e9cc30ddf08b012c55ee28bab9f3f51030c14b36496b324522',
    'c31121a866a0abf6f42f8ee884ef131761c055ba77ae2a8bac1a8b16a9d9d306',
    '025e059dbb8f7e2b01848ec23c2d9f6510fb586f7f241eea309664da1416eb8b',
    '3280353d85d9226b18406883d2de7db44835984ab3617c0b8e27829f976edfdc',
    '62a93904c72f862015e851ade2da3d8e46e333371b414b7629b5abc0a83d98e2',
    'ca3698811a6d4be9b6d4bcae4c806b67b453c7c4f43516a90ede155512435649',
    'c8585be5e6ea4dfd77600b71eda19cbeae45cfffe86a290a0d4ae7d9a2d1e72e',
    '922bf1b96ebad35392c0b8e38bef377bbf44da40bf38e38f09ca5f4f0b8c9787',
    '0e5622222e5f60158b401f313138aaa23d4ec7cc10672970e56ec07f1923cdc8',
    '739e8ac91d3c015842155496c5a2cd6ff90cea3de5af032dbc50d7bf671efa0a',
    '25eaf01bd2715a4db39dc6d35e552d5820a905fd76a32ace05071e6296a4f7a4',
    '52c06717cb48878aa75f9dfaf6b2b05e8dc0fcfed9163a02dc9ef99911f5f473',
    '07fd24e478d310679f8a9bbb95ea488eebb1b90ac8665b9828482c3c8dbfaaf7',
    'fd40e3e25e9a839494574df19d7cf4dd901937f77f89456232a6b421dfcd229c',
    'a593368e5c3a85679f40c8b6d681af235e642c7764446bab1205636e9a013b51',
    'd62d3f42045c92358f6d7bd01318a2533ba17ae73997de7bdabf5173cee41b01',
    '9db7eccead70b7aac1f02dc3e1d01f823e9bc5c47cb06a3a2f7fbdf53d7a5f9f',
    '5b9d45e5576ac505d7b20ec3df06f4ff47d6e77b5c1b90b2989e5bff9175f782',
    '2e4926a9715a6a3c2fc0b50b0e23a1ea3b7c7aeb872268b4f9aa801512b10483',
    '6c0fc963a22d5b0d4d213100f3b377906e3f789bf53ac0676a39adc5cdeeabc6',
    'da4435e5bb99b8e3209d3c715db3a56205398ea702b81edca42829bc6a2b7f3c',
    '4b9405f3ecec5aca005009e4df44bea3447fce1fef66ac741b43bf0ab810f758',
    '29ac0d3bea240af081b630c197fb7e2701f9f1624eab04c30efea2754f5fbf26',
    '80de8b827d391f779bc7ae5a3e9c881155f41d9aadbcc2af8b159cbedbbcada7',
    '5394220a3861378c7ba7f2d82434a7c608085c292e32e67740c28943a4b16d00',
    'be9f6cd016406647711c73a9e4a99875b916c9e9b5f15aac84499c16f1f7a0de',
    'effac7cc552be6fcd796ba109a0e4c5f939fd23434142131af2a61a15309e040',
    '6fab0f7da01b9d403e4c744124ba2c79b63c67c35cf19bb8532f49cd543ac173',
    'e97e711b3d1809c7cffc329d68d02b20d82fc848a256a4f820c77dda64d2d4df',
    'da29c823219b5e0018f7587b7323e3b5769e845e96932bc396f24b5b1b85f8b8',
    '4b694dea2a37d523ff287c96486e233100a87d1e0202d0c467aa02cb28bb3660',
    '35c0eadb04c471743c7fc154f595e7425fe845d49150f369b312f010d7d5d741',
    '0a1c041563f4a6a56cf45249d085bffc7ed982e1bba80a82af4dc491d8af76d1',
    'ea3bc25fb8da6601fd5c83bb25fdec1b2f9017d0aeafd1b5501207cdf349e6e8',
    '53373eca3648a25e6898abbaa66a2144b0764618721afa70614fd7a3a9037062',
    'bda927f07cd5fd769ae3a2ea6c1643a6309a5b653126518bfadee4a710da5e5f',
    '5de08eeef834359d84ccfa9b8eeee6f83983f668bdcfe00b01394022405e484e',
    'f7f70ae6057a7afcbcb78010354dc65e1bf59df9c873739f07eaa8237427e2be',
    '51526d9309f8f9ac767182b9e0dcbf1f58c5405512fbaa9a28822c41ab0f94e9',
    'f779e898bd1eb82a3d2f783120bb50a20b862eb3c09073f0d5bda6feed57f9c0',
    '25a93af000c469e3a254fb1de4f3a6169afed9addfa16c87083e49dbf896e432',
    'b2b464f1c74d45e95ba699ed34e4ebd16d57d98ee6de82bda149a937ba572374',
    '640b06551a484dbec277f2c911e8f9d3879bc81824f4261b2b1a01cac3231f93',
    'b815c300c58f170a02655dd30d9b95b03942c5b94f9af5d4af7d740f6e774088',
    'eb58efcdb8eb2145768eb52c887b9c7df15fbc11f08a2405993ef4dea2540309',
    '36f5b66efb68c27bff6bd163ffedb80a7886f5548f9ddf92b4e000fefdbb785e',
)


def block_digest(index: int, data: bytes) -> str:
    """``SHA-256(b"zkgrid/generator-cache v1" || u32(index) || data)`` in hex, where
    ``data`` is ``enc(G_i) || enc(H_i)`` for the block's pairs, uncompressed SEC1."""
    return hashlib.sha256(_DOMAIN + index.to_bytes(4, "big") + data).hexdigest()


def cache_dir() -> Path | None:
    """The generator cache's directory: ``$ZKGRID_CACHE_DIR`` if set (empty: no disk
    cache), else the platform's user cache directory + ``zkgrid`` (``$XDG_CACHE_HOME``
    or ``~/.cache`` on Linux, ``~/Library/Caches`` on macOS, ``%LOCALAPPDATA%`` on
    Windows). ``None`` when there is none."""
    configured = os.environ.get(CACHE_ENV)
    if configured is not None:
        return Path(configured).expanduser() if configured else None
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA")
        return Path(base) / "zkgrid" / "Cache" if base else None
    try:
        home = Path.home()
    except RuntimeError:
        return None
    if sys.platform == "darwin":
        return home / "Library" / "Caches" / "zkgrid"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg and os.path.isabs(xdg) else home / ".cache") / "zkgrid"


def _encode_block(g: list[Point], h: list[Point]) -> bytes:
    pairs = zip(g, h, strict=True)
    return b"".join(gi.export(_UNCOMPRESSED) + hi.export(_UNCOMPRESSED) for gi, hi in pairs)


def _read_block(index: int) -> tuple[list[Point], list[Point]] | None:
    """Block ``index`` from the disk cache if it is there and matches its pin, else ``None``."""
    directory = cache_dir()
    if directory is None or index >= len(PINNED_BLOCK_DIGESTS):
        return None
    try:
        with open(directory / _FILE, "rb") as f:
            if f.read(len(_MAGIC)) != _MAGIC:
                return None
            f.seek(len(_MAGIC) + index * _BLOCK_BYTES)
            data = f.read(_BLOCK_BYTES)
    except OSError:
        return None
    if len(data) != _BLOCK_BYTES or block_digest(index, data) != PINNED_BLOCK_DIGESTS[index]:
        return None
    points = [
        EcPt.from_binary(data[i : i + _POINT_BYTES], GROUP)
        for i in range(0, _BLOCK_BYTES, _POINT_BYTES)
    ]
    return points[0::2], points[1::2]


def _write_blocks(g: list[Point], h: list[Point]) -> None:
    """Replace the cache file with the pinned blocks covered by ``g``/``h``, followed by
    the old file's later blocks that match their pins (atomic rename; any failure leaves
    the cache as it was: it is only an optimisation)."""
    directory = cache_dir()
    blocks = min(len(g) // BLOCK_PAIRS, len(PINNED_BLOCK_DIGESTS))
    if directory is None or blocks == 0:
        return
    parts = [_MAGIC]
    for j in range(blocks):
        span = slice(j * BLOCK_PAIRS, (j + 1) * BLOCK_PAIRS)
        data = _encode_block(g[span], h[span])
        if block_digest(j, data) != PINNED_BLOCK_DIGESTS[j]:  # pragma: no cover - a wrong pin
            return
        parts.append(data)
    parts += _valid_blocks_from(blocks)
    temporary = directory / f".{_FILE}.{secrets.token_hex(8)}"
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(temporary, "xb") as f:
            f.write(b"".join(parts))
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, directory / _FILE)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink()


def _valid_blocks_from(first: int) -> list[bytes]:
    """The cache file's blocks ``first, first + 1, ...`` up to the first that fails its pin."""
    directory = cache_dir()
    out: list[bytes] = []
    if directory is None:
        return out
    try:
        with open(directory / _FILE, "rb") as f:
            if f.read(len(_MAGIC)) != _MAGIC:
                return out
            f.seek(len(_MAGIC) + first * _BLOCK_BYTES)
            for j in range(first, len(PINNED_BLOCK_DIGESTS)):
                data = f.read(_BLOCK_BYTES)
                if len(data) != _BLOCK_BYTES or block_digest(j, data) != PINNED_BLOCK_DIGESTS[j]:
                    break
                out.append(data)
    except OSError:
        pass
    return out


class _VectorGenerators:
    """Grows the cached lists of ``G_i``/``H_i`` on demand; thread-safe.

    Whole blocks come from the disk cache when it holds them (checked against their
    pins); everything else is derived, and whole pinned blocks derived here are
    written back.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._g: list[Point] = []
        self._h: list[Point] = []

    def get(self, count: int) -> tuple[list[Point], list[Point]]:
        if len(self._g) < count:
            with self._lock:
                self._grow(count)
        return self._g[:count], self._h[:count]

    def _grow(self, count: int) -> None:
        derived_blocks = False
        while len(self._g) < count:
            start = len(self._g)
            block = start // BLOCK_PAIRS
            if start % BLOCK_PAIRS == 0:
                loaded = _read_block(block)
                if loaded is not None:
                    self._g += loaded[0]
                    self._h += loaded[1]
                    continue
            end = min(count, (block + 1) * BLOCK_PAIRS)
            for i in range(start, end):
                self._g.append(hash_to_point(bp_label("G", i)))
                self._h.append(hash_to_point(bp_label("H", i)))
            derived_blocks |= end % BLOCK_PAIRS == 0 and block < len(PINNED_BLOCK_DIGESTS)
        if derived_blocks:  # the cache lacked a pinned block (or held a bad one): fill it
            _write_blocks(self._g, self._h)


_vectors = _VectorGenerators()


def bp_generators(count: int) -> tuple[list[Point], list[Point]]:
    """The first ``count`` of ``G_i`` and ``H_i``."""
    return _vectors.get(count)
