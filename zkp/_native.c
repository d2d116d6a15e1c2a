/*
 * zkp._native: vectors of scalars mod q (the order of NIST P-256) for batch
 * verification of range proofs. See docs/notes/batch-verification.md (B5).
 *
 * Only public values pass through here (challenges, proof scalars, random
 * weights): nothing is constant time and nothing needs to be.
 *
 * A ScalarVector holds n accumulators mod q. Its one heavy operation,
 * add_kronecker(root, factors), adds the vector
 *
 *     v_i = root * prod_{l : bit l of i is set} factors[l],   0 <= i < 2^L,
 *
 * (L = number of factors) to the first 2^L accumulators: the Kronecker
 * product root * (1, f_0) x (1, f_1) x ... that every O(N) scalar vector of a
 * Bulletproofs verifier is (s_i, y^-i zeta_i, y^-i s_(N-1-i)). It costs 2^L
 * modular multiplications, done with the GIL released.
 *
 * Arithmetic: 4 x 64-bit limbs, little-endian, Montgomery form with
 * R = 2^256 (CIOS multiplication). Values cross the boundary as 32-byte
 * little-endian strings and must already be reduced (< q).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

typedef unsigned __int128 u128;
typedef struct { uint64_t l[4]; } fe;

/* q = FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551 */
static const fe Q = {{0xF3B9CAC2FC632551ULL, 0xBCE6FAADA7179E84ULL,
                      0xFFFFFFFFFFFFFFFFULL, 0xFFFFFFFF00000000ULL}};
/* -q^-1 mod 2^64 */
static const uint64_t QINV = 0xCCD1C8AAEE00BC4FULL;
/* R^2 mod q, R = 2^256 */
static const fe R2 = {{0x83244C95BE79EEA2ULL, 0x4699799C49BD6FA6ULL,
                       0x2845B2392B6BEC59ULL, 0x66E12D94F3D95620ULL}};

/* r = a - q if a >= q (a < 2q, with carry bit hi), else a. */
static inline void reduce_once(fe *r, const uint64_t a[4], uint64_t hi) {
    uint64_t d[4];
    u128 borrow = 0;
    for (int j = 0; j < 4; j++) {
        u128 t = (u128)a[j] - Q.l[j] - (uint64_t)borrow;
        d[j] = (uint64_t)t;
        borrow = (t >> 64) ? 1 : 0;
    }
    /* a >= q iff the subtraction did not borrow, or the carry bit was set */
    if (hi || !borrow) {
        memcpy(r->l, d, sizeof d);
    } else {
        memcpy(r->l, a, sizeof d);
    }
}

/* r = a * b / R mod q (CIOS); a, b < q. r may alias a or b. */
static inline void mont_mul(fe *r, const fe *a, const fe *b) {
    uint64_t t[6] = {0, 0, 0, 0, 0, 0};
    for (int i = 0; i < 4; i++) {
        u128 c = 0;
        for (int j = 0; j < 4; j++) {
            c += (u128)a->l[j] * b->l[i] + t[j];
            t[j] = (uint64_t)c;
            c >>= 64;
        }
        c += t[4];
        t[4] = (uint64_t)c;
        t[5] = (uint64_t)(c >> 64);
        uint64_t m = t[0] * QINV;
        c = (u128)m * Q.l[0] + t[0];
        c >>= 64;
        for (int j = 1; j < 4; j++) {
            c += (u128)m * Q.l[j] + t[j];
            t[j - 1] = (uint64_t)c;
            c >>= 64;
        }
        c += t[4];
        t[3] = (uint64_t)c;
        t[4] = t[5] + (uint64_t)(c >> 64);
    }
    reduce_once(r, t, t[4]);
}

/* r = a + b mod q */
static inline void add_mod(fe *r, const fe *a, const fe *b) {
    uint64_t s[4];
    u128 c = 0;
    for (int j = 0; j < 4; j++) {
        c += (u128)a->l[j] + b->l[j];
        s[j] = (uint64_t)c;
        c >>= 64;
    }
    reduce_once(r, s, (uint64_t)c);
}

/* r = a - b mod q */
static inline void sub_mod(fe *r, const fe *a, const fe *b) {
    uint64_t d[4];
    u128 borrow = 0;
    for (int j = 0; j < 4; j++) {
        u128 t = (u128)a->l[j] - b->l[j] - (uint64_t)borrow;
        d[j] = (uint64_t)t;
        borrow = (t >> 64) ? 1 : 0;
    }
    if (borrow) { /* add q back */
        u128 c = 0;
        for (int j = 0; j < 4; j++) {
            c += (u128)d[j] + Q.l[j];
            d[j] = (uint64_t)c;
            c >>= 64;
        }
    }
    memcpy(r->l, d, sizeof d);
}

static int less_than_q(const fe *a) {
    for (int j = 3; j >= 0; j--) {
        if (a->l[j] < Q.l[j]) return 1;
        if (a->l[j] > Q.l[j]) return 0;
    }
    return 0;
}

static void load_le(fe *r, const unsigned char *p) {
    for (int j = 0; j < 4; j++) {
        uint64_t w = 0;
        for (int k = 7; k >= 0; k--) w = (w << 8) | p[8 * j + k];
        r->l[j] = w;
    }
}

/* 32 bytes big-endian of a plain (not Montgomery) value. */
static void store_be(unsigned char *o, const fe *plain) {
    for (int j = 0; j < 4; j++) {
        uint64_t w = plain->l[3 - j];
        for (int k = 0; k < 8; k++) o[8 * j + k] = (unsigned char)(w >> (56 - 8 * k));
    }
}

/* Parse a reduced 32-byte little-endian scalar into Montgomery form. */
static int scalar_from_buffer(fe *r, const unsigned char *p, const char *what) {
    fe a;
    load_le(&a, p);
    if (!less_than_q(&a)) {
        PyErr_Format(PyExc_ValueError, "%s is not reduced mod the group order", what);
        return -1;
    }
    mont_mul(r, &a, &R2);
    return 0;
}

/* ------------------------------------------------------------------ the type */

typedef struct {
    PyObject_HEAD
    Py_ssize_t n;
    fe *acc;     /* n accumulators, Montgomery form */
    fe *scratch; /* n values: the Kronecker vector being added */
    int busy;    /* set while a method runs without the GIL */
} ScalarVector;

static void sv_dealloc(ScalarVector *self) {
    PyMem_RawFree(self->acc);
    PyMem_RawFree(self->scratch);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int sv_init(ScalarVector *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"n", NULL};
    Py_ssize_t n;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "n", kwlist, &n)) return -1;
    if (n < 1 || n > (1 << 24)) {
        PyErr_SetString(PyExc_ValueError, "ScalarVector length must be in [1, 2^24]");
        return -1;
    }
    if (self->acc != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "ScalarVector is already initialised");
        return -1;
    }
    self->acc = PyMem_RawCalloc((size_t)n, sizeof(fe));
    self->scratch = PyMem_RawCalloc((size_t)n, sizeof(fe));
    if (self->acc == NULL || self->scratch == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->n = n;
    return 0;
}

static int sv_enter(ScalarVector *self) {
    if (self->acc == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "ScalarVector is not initialised");
        return -1;
    }
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "ScalarVector is in use by another thread");
        return -1;
    }
    self->busy = 1;
    return 0;
}

PyDoc_STRVAR(add_kronecker_doc,
"add_kronecker(root, factors, negate=False)\n--\n\n"
"Add (or subtract) v_i = root * prod_{bit l of i set} factors[l] for\n"
"0 <= i < 2^L, L = len(factors) // 32, to the first 2^L accumulators.\n"
"root: 32 bytes, factors: 32*L bytes; little-endian, each < q.");

static PyObject *sv_add_kronecker(ScalarVector *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"root", "factors", "negate", NULL};
    Py_buffer root, factors;
    int negate = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "y*y*|p", kwlist, &root, &factors, &negate))
        return NULL;
    PyObject *result = NULL;
    fe *f = NULL;
    if (root.len != 32 || factors.len % 32 != 0) {
        PyErr_SetString(PyExc_ValueError, "root must be 32 bytes and factors a multiple of 32");
        goto done;
    }
    Py_ssize_t levels = factors.len / 32;
    if (levels > 24 || ((Py_ssize_t)1 << levels) > self->n) {
        PyErr_SetString(PyExc_ValueError, "2^len(factors) exceeds the vector's length");
        goto done;
    }
    fe r;
    if (scalar_from_buffer(&r, root.buf, "root") < 0) goto done;
    f = PyMem_Malloc((size_t)(levels ? levels : 1) * sizeof(fe));
    if (f == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t l = 0; l < levels; l++) {
        if (scalar_from_buffer(&f[l], (const unsigned char *)factors.buf + 32 * l, "factor") < 0)
            goto done;
    }
    if (sv_enter(self) < 0) goto done;
    Py_BEGIN_ALLOW_THREADS
    fe *v = self->scratch;
    v[0] = r;
    Py_ssize_t half = 1;
    for (Py_ssize_t l = 0; l < levels; l++, half <<= 1) {
        for (Py_ssize_t i = 0; i < half; i++) mont_mul(&v[half + i], &v[i], &f[l]);
    }
    fe *acc = self->acc;
    if (negate) {
        for (Py_ssize_t i = 0; i < half; i++) sub_mod(&acc[i], &acc[i], &v[i]);
    } else {
        for (Py_ssize_t i = 0; i < half; i++) add_mod(&acc[i], &acc[i], &v[i]);
    }
    Py_END_ALLOW_THREADS
    self->busy = 0;
    result = Py_NewRef(Py_None);
done:
    PyMem_Free(f);
    PyBuffer_Release(&root);
    PyBuffer_Release(&factors);
    return result;
}

PyDoc_STRVAR(add_constant_doc,
"add_constant(value, count)\n--\n\n"
"Add value (32 bytes, little-endian, < q) to the first count accumulators.");

static PyObject *sv_add_constant(ScalarVector *self, PyObject *args) {
    Py_buffer value;
    Py_ssize_t count;
    if (!PyArg_ParseTuple(args, "y*n", &value, &count)) return NULL;
    PyObject *result = NULL;
    fe c;
    if (value.len != 32) {
        PyErr_SetString(PyExc_ValueError, "value must be 32 bytes");
        goto done;
    }
    if (count < 0 || count > self->n) {
        PyErr_SetString(PyExc_ValueError, "count exceeds the vector's length");
        goto done;
    }
    if (scalar_from_buffer(&c, value.buf, "value") < 0) goto done;
    if (sv_enter(self) < 0) goto done;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < count; i++) add_mod(&self->acc[i], &self->acc[i], &c);
    Py_END_ALLOW_THREADS
    self->busy = 0;
    result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&value);
    return result;
}

/* A Python int in [0, q) as a plain (not Montgomery) field element; -1 with an error set. */
static int int_to_plain(PyObject *item, fe *out) {
    if (!PyLong_Check(item)) {
        PyErr_SetString(PyExc_TypeError, "scalars must be ints");
        return -1;
    }
    unsigned char le[32];
#if PY_VERSION_HEX >= 0x030D0000
    Py_ssize_t need = PyLong_AsNativeBytes(
        item, le, 32,
        Py_ASNATIVEBYTES_LITTLE_ENDIAN | Py_ASNATIVEBYTES_UNSIGNED_BUFFER |
            Py_ASNATIVEBYTES_REJECT_NEGATIVE);
    if (need < 0 || need > 32) {
#else
    if (_PyLong_AsByteArray((PyLongObject *)item, le, 32, 1, 0) < 0) {
#endif
        PyErr_Clear();
        PyErr_SetString(PyExc_ValueError, "scalar is not in [0, q)");
        return -1;
    }
    load_le(out, le);
    if (!less_than_q(out)) {
        PyErr_SetString(PyExc_ValueError, "scalar is not in [0, q)");
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(add_weighted_doc,
"add_weighted(scale, base, values)\n--\n\n"
"Add scale * base^i * values[i] to accumulator i for i < len(values): the sparse,\n"
"per-gate terms of a circuit verifier (docs/notes/r1cs.md (C10)). scale, base: 32\n"
"bytes little-endian, < q; values: a list of ints in [0, q).");

static PyObject *sv_add_weighted(ScalarVector *self, PyObject *args) {
    Py_buffer scale, base;
    PyObject *values;
    if (!PyArg_ParseTuple(args, "y*y*O!", &scale, &base, &PyList_Type, &values)) return NULL;
    PyObject *result = NULL;
    if (scale.len != 32 || base.len != 32) {
        PyErr_SetString(PyExc_ValueError, "scale and base must be 32 bytes");
        goto done;
    }
    Py_ssize_t count = PyList_GET_SIZE(values);
    if (count > self->n) {
        PyErr_SetString(PyExc_ValueError, "more values than accumulators");
        goto done;
    }
    fe sc, b;
    if (scalar_from_buffer(&sc, scale.buf, "scale") < 0) goto done;
    if (scalar_from_buffer(&b, base.buf, "base") < 0) goto done;
    if (sv_enter(self) < 0) goto done;
    for (Py_ssize_t i = 0; i < count; i++) {
        fe plain;
        if (int_to_plain(PyList_GET_ITEM(values, i), &plain) < 0) {
            self->busy = 0;
            goto done;
        }
        mont_mul(&self->scratch[i], &plain, &R2);
    }
    Py_BEGIN_ALLOW_THREADS
    fe power = sc;
    for (Py_ssize_t i = 0; i < count; i++) {
        fe t;
        mont_mul(&t, &power, &self->scratch[i]);
        add_mod(&self->acc[i], &self->acc[i], &t);
        mont_mul(&power, &power, &b);
    }
    Py_END_ALLOW_THREADS
    self->busy = 0;
    result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&scale);
    PyBuffer_Release(&base);
    return result;
}

PyDoc_STRVAR(to_bytes_doc,
"to_bytes()\n--\n\n"
"The accumulators as n 32-byte big-endian residues mod q, concatenated.");

static PyObject *sv_to_bytes(ScalarVector *self, PyObject *Py_UNUSED(ignored)) {
    if (sv_enter(self) < 0) return NULL;
    PyObject *out = PyBytes_FromStringAndSize(NULL, self->n * 32);
    if (out == NULL) {
        self->busy = 0;
        return NULL;
    }
    unsigned char *p = (unsigned char *)PyBytes_AS_STRING(out);
    const fe one = {{1, 0, 0, 0}};
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < self->n; i++) {
        fe plain;
        mont_mul(&plain, &self->acc[i], &one);
        store_be(p + 32 * i, &plain);
    }
    Py_END_ALLOW_THREADS
    self->busy = 0;
    return out;
}

/* ------------------------------------------------- OpenSSL BIGNUMs for the msm
 *
 * petlib hands the multi-scalar multiplication to OpenSSL's EC_POINTs_mul,
 * which takes an array of BIGNUM pointers. Creating one petlib Bn object per
 * scalar costs about 2 us of Python; these functions write the scalars into
 * BIGNUMs the caller allocated once (zkp.group), through OpenSSL's own
 * BN_bin2bn, whose address the caller takes from petlib's cffi library. So
 * this module needs neither OpenSSL's headers nor linking against it.
 */
typedef void *(*bin2bn_fn)(const unsigned char *, int, void *);

PyDoc_STRVAR(fill_bignums_doc,
"fill_bignums(bin2bn, array)\n--\n\n"
"Write the n accumulators (reduced) into array[0..n-1], an array of n\n"
"allocated OpenSSL BIGNUM pointers, with BIGNUM *BN_bin2bn(const unsigned\n"
"char *, int, BIGNUM *) at address bin2bn. Internal to zkp.group.");

static PyObject *sv_fill_bignums(ScalarVector *self, PyObject *args) {
    unsigned long long fn_addr, array_addr;
    if (!PyArg_ParseTuple(args, "KK", &fn_addr, &array_addr)) return NULL;
    if (fn_addr == 0 || array_addr == 0) {
        PyErr_SetString(PyExc_ValueError, "null function or array address");
        return NULL;
    }
    if (sv_enter(self) < 0) return NULL;
    bin2bn_fn bin2bn = (bin2bn_fn)(uintptr_t)fn_addr;
    void **array = (void **)(uintptr_t)array_addr;
    const fe one = {{1, 0, 0, 0}};
    int failed = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < self->n && !failed; i++) {
        fe plain;
        unsigned char buf[32];
        mont_mul(&plain, &self->acc[i], &one);
        store_be(buf, &plain);
        if (array[i] == NULL || bin2bn(buf, 32, array[i]) == NULL) failed = 1;
    }
    Py_END_ALLOW_THREADS
    self->busy = 0;
    if (failed) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

static Py_ssize_t sv_len(ScalarVector *self) { return self->n; }

static PyMethodDef sv_methods[] = {
    {"add_kronecker", (PyCFunction)(void (*)(void))sv_add_kronecker, METH_VARARGS | METH_KEYWORDS,
     add_kronecker_doc},
    {"add_constant", (PyCFunction)sv_add_constant, METH_VARARGS, add_constant_doc},
    {"add_weighted", (PyCFunction)sv_add_weighted, METH_VARARGS, add_weighted_doc},
    {"to_bytes", (PyCFunction)sv_to_bytes, METH_NOARGS, to_bytes_doc},
    {"fill_bignums", (PyCFunction)sv_fill_bignums, METH_VARARGS, fill_bignums_doc},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods sv_as_sequence = {
    .sq_length = (lenfunc)sv_len,
};

static PyTypeObject ScalarVectorType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "zkp._native.ScalarVector",
    .tp_doc = PyDoc_STR("ScalarVector(n): n accumulators mod the P-256 group order, all zero."),
    .tp_basicsize = sizeof(ScalarVector),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)sv_init,
    .tp_dealloc = (destructor)sv_dealloc,
    .tp_methods = sv_methods,
    .tp_as_sequence = &sv_as_sequence,
};

PyDoc_STRVAR(fill_bignums_from_ints_doc,
"fill_bignums_from_ints(bin2bn, array, values)\n--\n\n"
"Write the ints of the list values, each in [0, q), into array[0..len-1] (allocated\n"
"OpenSSL BIGNUM pointers) with BN_bin2bn at address bin2bn. Internal to zkp.group.");

static PyObject *fill_bignums_from_ints(PyObject *Py_UNUSED(module), PyObject *args) {
    unsigned long long fn_addr, array_addr;
    PyObject *values;
    if (!PyArg_ParseTuple(args, "KKO!", &fn_addr, &array_addr, &PyList_Type, &values))
        return NULL;
    if (fn_addr == 0 || array_addr == 0) {
        PyErr_SetString(PyExc_ValueError, "null function or array address");
        return NULL;
    }
    bin2bn_fn bin2bn = (bin2bn_fn)(uintptr_t)fn_addr;
    void **array = (void **)(uintptr_t)array_addr;
    Py_ssize_t count = PyList_GET_SIZE(values);
    for (Py_ssize_t i = 0; i < count; i++) {
        fe a;
        if (int_to_plain(PyList_GET_ITEM(values, i), &a) < 0) return NULL;
        unsigned char be[32];
        store_be(be, &a);
        if (array[i] == NULL || bin2bn(be, 32, array[i]) == NULL) return PyErr_NoMemory();
    }
    Py_RETURN_NONE;
}

static PyMethodDef native_functions[] = {
    {"fill_bignums_from_ints", fill_bignums_from_ints, METH_VARARGS, fill_bignums_from_ints_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "zkp._native",
    .m_doc = PyDoc_STR("Scalar vectors mod the P-256 group order for batch verification."),
    .m_size = -1,
    .m_methods = native_functions,
};

PyMODINIT_FUNC PyInit__native(void) {
    if (PyType_Ready(&ScalarVectorType) < 0) return NULL;
    PyObject *m = PyModule_Create(&native_module);
    if (m == NULL) return NULL;
    if (PyModule_AddObjectRef(m, "ScalarVector", (PyObject *)&ScalarVectorType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
