/* bf16 GEMM with fp32 accumulation on Intel AMX (asrkd/kernels/amx_gemm.py builds and calls it).
 *
 * C (M x N, bf16, row stride ldc) = A (M x K, bf16, row stride lda) @ B  [+ bias] [ReLU], where B
 * is either row-major K x N (stride ldb, b_trans = 0) or given as its transpose, row-major N x K
 * (stride ldb, b_trans = 1). Any M, N, K >= 1. The whole K is accumulated in fp32 tiles, then
 * bias and ReLU are applied in fp32 and the result is rounded to bf16 once, to nearest even (NaN
 * stays NaN).
 *
 * Tiles: 0-3 a 2 x 2 block of 16 x 16 fp32 accumulators (a 32 x 32 block of C), 4-5 two 16 x 32
 * bf16 A tiles, 6-7 two B tiles in the VNNI layout (16 rows of K pairs x 16 columns x 2).
 *
 * Blocking (measured here: 2 cores, 2 MiB L2 each, ~27 GB/s of L3 bandwidth per core): each
 * thread owns a range of 32-column pairs of C. For each block of NB columns it packs B's K x NB
 * block into the VNNI layout (an L2-resident buffer, zero-padded in K and N), then runs every
 * 32-row panel of A against it, reading A in place with strided tile loads. A's K tail (K % 32)
 * and its last partial row panel go through small zero-padded copies: a tile load past the end of
 * a row would read the next row's values (0 * inf = NaN). Other blockings tried (K chunks with
 * fp32 partial sums in L2, packed A panels, A packing interleaved with the tile instructions,
 * software prefetch of the next A panel) were slower or no faster here.
 *
 * Epilogue: a block's values go through a small fp32 buffer and are rounded and written row by row
 * during the next block's tile instructions (pend_t), so that the vector work overlaps the AMX
 * work. amx_dgrad_relu_bf16 is the input-gradient GEMM of the training step with the ReLU
 * backward of the layer below in that epilogue (epi_row_relu_bwd): the gradient g = A @ B is
 * rounded to bf16 but never written; the epilogue reads the layer's output h (prefetched when
 * the block starts), writes dz = g * [h > 0] * scale and h^T with non-temporal stores (whole
 * cache lines, not read first) and sums the bias gradient, bit for bit as the unfused path
 * (bf16_kernels.relu_backward_t). Measured on 2048 x 2560 x 2560, 2 threads, operands out of
 * cache: ~13.7-14 ms per call against ~16 for the GEMM (~12) + relu_backward_t (~3.3); without
 * the prefetch and the non-temporal stores the fused call was no faster than the two.
 *
 * Threads: OpenMP, linked against libgomp.so.1: loaded after torch, the dynamic loader resolves it
 * to torch's own libgomp (same soname), so the kernel runs on torch's thread pool. Plain pthreads
 * per call ran ~40 % slower inside the training step than alone: torch's pool threads spin for a
 * while after each op and competed with ours for the two cores. Calls are serialised by a mutex
 * (the per-thread scratch buffers are shared).
 */
#include <immintrin.h>
#include <omp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

typedef struct {
    uint8_t palette, start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tilecfg_t;

/* Columns per B block (a multiple of 32): K x NB bf16 must stay in L2 next to a 32 x K A panel.
 * 192 was the best of 64..640 on the 2048 x 2560 x 2560 shapes here (128-256 within noise). */
static int g_nb = 192;

/* Asks the kernel for permission to use the AMX tile state; 0 when granted. */
int amx_request_perm(void) {
    return (int)syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA);
}

/* Sets the columns per B block (rounded down to a multiple of 32, at least 32); for tuning. */
void amx_set_block_cols(int nb) {
    g_nb = nb < 32 ? 32 : nb / 32 * 32;
}

static void tile_config(void) {
    tilecfg_t c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int i = 0; i < 8; i++) { c.colsb[i] = 64; c.rows[i] = 16; }
    _tile_loadconfig(&c);
}

typedef struct {
    const uint16_t *a, *b, *bias;
    uint16_t *c;
    long m, n, k, lda, ldb, ldc;
    int b_trans, relu;
    /* ReLU-backward epilogue (amx_dgrad_relu_bf16), h == NULL otherwise */
    const uint16_t *h;
    uint16_t *ht;
    float *db, *part;
    long ldh, ldht;
    float scale;
    long p0, p1;  /* this thread's 32-column pairs [p0, p1) */
    int tid, err;
} job_t;

/* In-place 16 x 16 transpose of 32-bit words: afterwards r[x] holds word x of every input r[c]. */
static inline void transpose16x16_32(__m512i r[16]) {
    __m512i t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
        r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
        r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
        r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
    /* r[4g + s] holds, in each 128-bit lane L, rows 4g..4g+3 of column 4L + s' */
    for (int i = 0; i < 16; i += 8)
        for (int s = 0; s < 4; s++) {
            t[i + s] = _mm512_shuffle_i32x4(r[i + s], r[i + 4 + s], 0x88);
            t[i + 4 + s] = _mm512_shuffle_i32x4(r[i + s], r[i + 4 + s], 0xdd);
        }
    for (int s = 0; s < 4; s++) {
        r[s] = _mm512_shuffle_i32x4(t[s], t[8 + s], 0x88);
        r[8 + s] = _mm512_shuffle_i32x4(t[s], t[8 + s], 0xdd);
        r[4 + s] = _mm512_shuffle_i32x4(t[4 + s], t[12 + s], 0x88);
        r[12 + s] = _mm512_shuffle_i32x4(t[4 + s], t[12 + s], 0xdd);
    }
}

/* Packs B's columns [n0, n0 + 32 * npairs) into VNNI panels: panel q (16 columns) at
 * bp + q * kp * 16, row k2 (K pair) of 16 x 2 values, zero beyond K and N. */
static void pack_b(const job_t *j, long n0, long npairs, long kp, uint16_t *bp) {
    if (!j->b_trans) {
        /* B row-major (K x N): interleave rows 2 k2 and 2 k2 + 1, 32 columns (two panels) at a time */
        const __m512i lo = _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9, 40, 8,
                                            39, 7, 38, 6, 37, 5, 36, 4, 35, 3, 34, 2, 33, 1, 32, 0);
        const __m512i hi = _mm512_add_epi16(lo, _mm512_set1_epi16(16));
        /* row pairs outer: B is read along its rows (prefetch-friendly), the panels are written
         * at 2 * npairs places at once */
        for (long k2 = 0; k2 < kp / 2; k2++) {
            long r0 = 2 * k2, r1 = r0 + 1;
            for (long pp = 0; pp < npairs; pp++) {
                long nq = n0 + 32 * pp, nv = j->n - nq;
                __mmask32 msk = nv >= 32 ? 0xffffffffu : (__mmask32)((1u << nv) - 1);
                uint16_t *d0 = bp + 2 * pp * kp * 16 + k2 * 32, *d1 = d0 + kp * 16;
                __m512i x0 = _mm512_setzero_si512(), x1 = _mm512_setzero_si512();
                if (r0 < j->k) x0 = _mm512_maskz_loadu_epi16(msk, j->b + r0 * j->ldb + nq);
                if (r1 < j->k) x1 = _mm512_maskz_loadu_epi16(msk, j->b + r1 * j->ldb + nq);
                _mm512_store_si512(d0, _mm512_permutex2var_epi16(x0, lo, x1));
                _mm512_store_si512(d1, _mm512_permutex2var_epi16(x0, hi, x1));
            }
        }
        return;
    }
    for (long q = 0; q < 2 * npairs; q++) {
        uint16_t *dst = bp + q * kp * 16;
        long nq = n0 + 16 * q;
        long nv = j->n - nq;  /* valid columns in this panel */
        if (nv > 16) nv = 16;
        if (nv <= 0) { memset(dst, 0, kp * 16 * 2); continue; }
        {
            /* B^T row-major (N x K): a K pair of column n is one 32-bit word of row n. */
            uint32_t *d32 = (uint32_t *)dst;
            long kfull = j->k / 2;  /* whole pairs */
            for (long k2 = 0; k2 < kp / 2; k2 += 16) {
                if (nv == 16 && k2 + 16 <= kfull) {
                    __m512i r[16];
                    for (int c = 0; c < 16; c++)
                        r[c] = _mm512_loadu_si512((const void *)(j->b + (nq + c) * j->ldb + 2 * k2));
                    transpose16x16_32(r);
                    /* r[x] now holds K pair k2 + x of the 16 columns */
                    for (int x = 0; x < 16; x++) _mm512_storeu_si512(d32 + (k2 + x) * 16, r[x]);
                } else {
                    for (long x = k2; x < k2 + 16 && x < kp / 2; x++)
                        for (long c = 0; c < 16; c++) {
                            uint32_t w = 0;
                            if (c < nv) {
                                const uint16_t *row = j->b + (nq + c) * j->ldb;
                                uint16_t lo = 2 * x < j->k ? row[2 * x] : 0;
                                uint16_t hi = 2 * x + 1 < j->k ? row[2 * x + 1] : 0;
                                w = (uint32_t)lo | ((uint32_t)hi << 16);
                            }
                            d32[x * 16 + c] = w;
                        }
                }
            }
        }
    }
}

/* Rounds 16 fp32 values to bf16, to nearest even; NaN stays a (quiet) NaN. */
static inline __m256i to_bf16(__m512 x) {
    __m512i b = _mm512_castps_si512(x);
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(b, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
    __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
    r = _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(b, 16), _mm512_set1_epi32(0x40));
    return _mm512_cvtepi32_epi16(r);
}

/* 16 bf16 values -> fp32 (exact). */
static inline __m512 from_bf16(__m256i v) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(v), 16));
}

/* Rounds 16 fp32 values (+ bias, ReLU) to bf16, to nearest even; NaN stays a (quiet) NaN. */
static inline __m256i round16(__m512 x, __m512 bias, int relu) {
    x = _mm512_add_ps(x, bias);
    if (relu)  /* keep x where x > 0 or x is NaN, else +0 */
        x = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_NLE_UQ), x);
    return to_bf16(x);
}

/* A block's epilogue, run row by row interleaved with the next block's tile instructions (see
 * worker): the vector work then overlaps the AMX work instead of leaving the AMX unit idle. */
typedef struct {
    const float *acc;  /* the block's fp32 values, 32 x 32, row stride 32 */
    long m0, n0, mv, nv, row;  /* rows [m0, m0 + mv), cols [n0, n0 + nv); next row to do */
    __mmask16 k[2];  /* valid columns of the two 16-column halves */
    __m512 v0, v1;  /* the bias (plain GEMM), or the running partial bias-gradient sums (ReLU backward) */
    int active;
} pend_t;

/* Starts the epilogue of the block in acc at rows m0, cols n0. */
static void epi_start(const job_t *j, pend_t *e, const float *acc, long m0, long n0) {
    e->acc = acc; e->m0 = m0; e->n0 = n0; e->row = 0; e->active = 1;
    e->mv = j->m - m0 < 32 ? j->m - m0 : 32;
    e->nv = j->n - n0 < 32 ? j->n - n0 : 32;
    e->k[0] = e->nv >= 16 ? 0xffff : (__mmask16)((1u << e->nv) - 1);
    e->k[1] = e->nv >= 32 ? 0xffff : e->nv <= 16 ? 0 : (__mmask16)((1u << (e->nv - 16)) - 1);
    e->v0 = _mm512_setzero_ps(); e->v1 = _mm512_setzero_ps();
    if (j->h) {
        /* the block's rows of h are read during the next block's tile instructions: fetch them
         * now (one line per row; the hardware prefetchers miss this strided pattern) */
        for (long r = 0; r < e->mv; r++) _mm_prefetch((const char *)(j->h + (m0 + r) * j->ldh + n0), _MM_HINT_T0);
        if (m0 % 64 != 0) {  /* the 64-row block's partial sums so far (see epi_row_relu_bwd) */
            e->v0 = _mm512_maskz_loadu_ps(e->k[0], j->part + n0);
            e->v1 = _mm512_maskz_loadu_ps(e->k[1], j->part + n0 + 16);
        }
    } else if (j->bias) {
        e->v0 = from_bf16(_mm256_maskz_loadu_epi16(e->k[0], j->bias + n0));
        e->v1 = from_bf16(_mm256_maskz_loadu_epi16(e->k[1], j->bias + n0 + 16));
    }
}

/* Plain GEMM: one row of C = round(acc + bias, ReLU). */
static inline void epi_row_plain(const job_t *j, pend_t *e) {
    long r = e->row++;
    uint16_t *dst = j->c + (e->m0 + r) * j->ldc + e->n0;
    _mm256_mask_storeu_epi16(dst, e->k[0], round16(_mm512_load_ps(e->acc + r * 32), e->v0, j->relu));
    if (e->k[1]) _mm256_mask_storeu_epi16(dst + 16, e->k[1], round16(_mm512_load_ps(e->acc + r * 32 + 16), e->v1, j->relu));
}

/* The ReLU backward (amx_dgrad_relu_bf16), the same values bit for bit as the unfused path (the
 * GEMM writing g in bf16, then bf16_kernels.relu_backward_t):
 *   g rounded to bf16 (after adding a zero bias, as the plain GEMM does: -0 becomes +0),
 *   dz = g where h > 0 as int16 (sign clear and not +0: positive values, +inf, positive NaNs), else +0,
 *   with a scale != 1: dz = bf16(fp32(dz) * scale),
 *   db[c] = sum over 64-row blocks in order of (the block's rows summed in order from +0) in fp32,
 *   ht[c][r] = h[r][c] (epi_finish).
 * A 64-row block's partial sums live in j->part between its two 32-row panels (this thread owns
 * the columns, and finishes a column's row panels in increasing order). */
static inline __m256i relu_bwd16(const job_t *j, const float *acc, const uint16_t *h, __mmask16 k) {
    __m256i g = to_bf16(_mm512_add_ps(_mm512_load_ps(acc), _mm512_setzero_ps()));
    __m256i hv = _mm256_maskz_loadu_epi16(k, h);
    __m256i v = _mm256_maskz_mov_epi16(_mm256_cmpgt_epi16_mask(hv, _mm256_setzero_si256()), g);
    if (j->scale != 1.0f) v = to_bf16(_mm512_mul_ps(from_bf16(v), _mm512_set1_ps(j->scale)));
    return v;
}

static inline void epi_row_relu_bwd(const job_t *j, pend_t *e) {
    long r = e->row++;
    const uint16_t *hr = j->h + (e->m0 + r) * j->ldh + e->n0;
    uint16_t *dst = j->c + (e->m0 + r) * j->ldc + e->n0;
    if (e->nv == 32 && ((uintptr_t)dst & 63) == 0) {
        /* a whole cache line of dz: a non-temporal store skips reading the line first */
        __m256i v0 = relu_bwd16(j, e->acc + r * 32, hr, 0xffff);
        __m256i v1 = relu_bwd16(j, e->acc + r * 32 + 16, hr + 16, 0xffff);
        e->v0 = _mm512_add_ps(e->v0, from_bf16(v0));
        e->v1 = _mm512_add_ps(e->v1, from_bf16(v1));
        _mm512_stream_si512((void *)dst, _mm512_inserti64x4(_mm512_castsi256_si512(v0), v1, 1));
        return;
    }
    __m256i v = relu_bwd16(j, e->acc + r * 32, hr, e->k[0]);
    _mm256_mask_storeu_epi16(dst, e->k[0], v);
    e->v0 = _mm512_add_ps(e->v0, from_bf16(v));
    if (e->k[1]) {
        v = relu_bwd16(j, e->acc + r * 32 + 16, hr + 16, e->k[1]);
        _mm256_mask_storeu_epi16(dst + 16, e->k[1], v);
        e->v1 = _mm512_add_ps(e->v1, from_bf16(v));
    }
}

static inline void epi_row(const job_t *j, pend_t *e) {
    if (j->h) epi_row_relu_bwd(j, e);
    else epi_row_plain(j, e);
}

/* h block -> ht block: rows 2i and 2i + 1 interleaved into 32-bit words (columns 0-15 in w[0],
 * 16-31 in w[1]), then each 16 x 16 word block transposed: word block row x is then column x's
 * 32 rows, in order. Rows past M are zeros, never stored. */
static void transpose_h(const job_t *j, long m0, long n0, long mv, long nv) {
    const __m512i lo = _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9, 40, 8,
                                        39, 7, 38, 6, 37, 5, 36, 4, 35, 3, 34, 2, 33, 1, 32, 0);
    const __m512i hi = _mm512_add_epi16(lo, _mm512_set1_epi16(16));
    const __mmask32 kn = nv >= 32 ? 0xffffffffu : (__mmask32)((1u << nv) - 1);
    const __mmask32 km = mv >= 32 ? 0xffffffffu : (__mmask32)((1u << mv) - 1);
    __m512i w[2][16];
    for (int i = 0; i < 16; i++) {
        __m512i x0 = _mm512_setzero_si512(), x1 = _mm512_setzero_si512();
        if (2 * i < mv) x0 = _mm512_maskz_loadu_epi16(kn, j->h + (m0 + 2 * i) * j->ldh + n0);
        if (2 * i + 1 < mv) x1 = _mm512_maskz_loadu_epi16(kn, j->h + (m0 + 2 * i + 1) * j->ldh + n0);
        w[0][i] = _mm512_permutex2var_epi16(x0, lo, x1);
        w[1][i] = _mm512_permutex2var_epi16(x0, hi, x1);
    }
    for (int s = 0; s < 2; s++) {
        if (16 * s >= nv) break;
        transpose16x16_32(w[s]);
        for (long x = 0; x < 16 && 16 * s + x < nv; x++) {
            uint16_t *dst = j->ht + (n0 + 16 * s + x) * j->ldht + m0;
            if (mv == 32 && ((uintptr_t)dst & 63) == 0) _mm512_stream_si512((void *)dst, w[s][x]);
            else _mm512_mask_storeu_epi16(dst, km, w[s][x]);
        }
    }
}

/* Does the epilogue's remaining rows and its per-block end. */
static void epi_finish(const job_t *j, pend_t *e) {
    if (!e->active) return;
    while (e->row < e->mv) epi_row(j, e);
    e->active = 0;
    if (!j->h) return;
    const long m0 = e->m0, n0 = e->n0;
    if (m0 % 64 == 32 || m0 + 32 >= j->m) {  /* the 64-row block is complete: add it to the total */
        __m512 t0 = _mm512_setzero_ps(), t1 = _mm512_setzero_ps();
        if (m0 >= 64) {
            t0 = _mm512_maskz_loadu_ps(e->k[0], j->db + n0);
            t1 = _mm512_maskz_loadu_ps(e->k[1], j->db + n0 + 16);
        }
        _mm512_mask_storeu_ps(j->db + n0, e->k[0], _mm512_add_ps(t0, e->v0));
        _mm512_mask_storeu_ps(j->db + n0 + 16, e->k[1], _mm512_add_ps(t1, e->v1));
    } else {
        _mm512_mask_storeu_ps(j->part + n0, e->k[0], e->v0);
        _mm512_mask_storeu_ps(j->part + n0 + 16, e->k[1], e->v1);
    }
    if (j->ht) transpose_h(j, m0, n0, e->mv, e->nv);
}

/* Per-thread scratch kept across calls (re-faulting megabytes of fresh pages every call costs
 * more than the packing itself); guarded by g_lock, one GEMM at a time. */
typedef struct { void *p; size_t n; } buf_t;
static buf_t g_bufs[64][3];
static buf_t g_part;  /* the 64-row partial bias-gradient sums, one per column */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

static void *scratch(buf_t *b, size_t n) {
    if (b->n < n) {
        free(b->p);
        b->p = aligned_alloc(4096, (n + 4095) / 4096 * 4096);
        b->n = b->p ? n : 0;
    }
    return b->p;
}

/* One thread's share of C: column pairs [p0, p1) (see the top of the file). */
static void *worker(void *arg) {
    job_t *j = (job_t *)arg;
    if (j->p1 <= j->p0) return NULL;
    const long M = j->m, K = j->k;
    const long k32 = K / 32 * 32, kp = (K + 31) / 32 * 32, m32 = M / 32 * 32;
    const long nbp = g_nb / 32;  /* column pairs per block */
    buf_t *bufs = g_bufs[j->tid];
    uint16_t *bp = scratch(&bufs[0], (size_t)(nbp * 2 * kp * 16 * 2));
    uint16_t *atail = K > k32 ? scratch(&bufs[1], (size_t)((M + 32) * 64)) : NULL;
    uint16_t *alast = M > m32 ? scratch(&bufs[2], (size_t)(32 * kp * 2)) : NULL;
    float acc[2][32 * 32] __attribute__((aligned(64)));  /* a block's values, and the previous one's */
    int cur = 0;
    pend_t e;
    e.active = 0;
    if (!bp || (K > k32 && !atail) || (M > m32 && !alast)) {
        j->err = 1;
        return NULL;
    }
    if (atail) {
        memset(atail, 0, (size_t)((M + 32) * 64));
        for (long r = 0; r < M; r++) memcpy(atail + r * 32, j->a + r * j->lda + k32, (size_t)(K - k32) * 2);
    }
    if (alast) {
        memset(alast, 0, (size_t)(32 * kp * 2));
        for (long r = m32; r < M; r++) memcpy(alast + (r - m32) * kp, j->a + r * j->lda, (size_t)K * 2);
    }
    tile_config();
    for (long nb = j->p0; nb < j->p1; nb += nbp) {
        long nb1 = nb + nbp < j->p1 ? nb + nbp : j->p1;
        pack_b(j, 32 * nb, nb1 - nb, kp, bp);
        for (long m0 = 0; m0 < M; m0 += 32) {
            const char *a;
            long ldab, kin;
            if (m0 < m32) { a = (const char *)(j->a + m0 * j->lda); ldab = j->lda * 2; kin = k32; }
            else { a = (const char *)alast; ldab = kp * 2; kin = kp; }
            for (long p = nb; p < nb1; p++) {
                const uint16_t *b0 = bp + (p - nb) * 2 * kp * 16, *b1 = b0 + kp * 16;
                _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
                long k = 0;
                for (; k < kin; k += 32) {
                    if (e.active && e.row < e.mv) epi_row(j, &e);  /* the previous block's epilogue */
                    /* each load just before its first use: the next step's loads wait
                     * for the tiles to be free, and this order frees them earliest */
                    _tile_loadd(4, a + 2 * k, ldab);
                    _tile_loadd(6, b0 + k * 16, 64);
                    _tile_dpbf16ps(0, 4, 6);
                    _tile_loadd(7, b1 + k * 16, 64);
                    _tile_dpbf16ps(1, 4, 7);
                    _tile_loadd(5, a + 2 * k + 16 * ldab, ldab);
                    _tile_dpbf16ps(2, 5, 6);
                    _tile_dpbf16ps(3, 5, 7);
                }
                if (k < kp) {  /* K tail of the in-place rows, from the zero-padded copy */
                    const uint16_t *at = atail + m0 * 32;
                    _tile_loadd(4, at, 64);
                    _tile_loadd(5, at + 16 * 32, 64);
                    _tile_loadd(6, b0 + k * 16, 64);
                    _tile_loadd(7, b1 + k * 16, 64);
                    _tile_dpbf16ps(0, 4, 6);
                    _tile_dpbf16ps(1, 4, 7);
                    _tile_dpbf16ps(2, 5, 6);
                    _tile_dpbf16ps(3, 5, 7);
                }
                epi_finish(j, &e);
                float *ac = acc[cur];
                cur ^= 1;
                _tile_stored(0, ac, 128); _tile_stored(1, ac + 16, 128);
                _tile_stored(2, ac + 512, 128); _tile_stored(3, ac + 512 + 16, 128);
                epi_start(j, &e, ac, m0, 32 * p);
            }
        }
    }
    epi_finish(j, &e);
    _mm_sfence();  /* the non-temporal stores are visible before the call returns */
    _tile_release();
    return NULL;
}

static int run(const job_t *proto, int nthreads) {
    long pairs = (proto->n + 31) / 32;
    if (nthreads < 1) nthreads = 1;
    if (nthreads > 64) nthreads = 64;
    if (nthreads > pairs) nthreads = (int)pairs;
    job_t jobs[64];
    for (int t = 0; t < nthreads; t++) {
        job_t *j = &jobs[t];
        *j = *proto;
        j->err = 0; j->tid = t;
        j->p0 = pairs * t / nthreads; j->p1 = pairs * (t + 1) / nthreads;
    }
    /* If the runtime gives fewer threads than asked, the first thread runs the rest. */
#pragma omp parallel num_threads(nthreads)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        worker(&jobs[t]);
        if (t == 0)
            for (int r = nt; r < nthreads; r++) worker(&jobs[r]);
    }
    int err = 0;
    for (int t = 0; t < nthreads; t++) err |= jobs[t].err;
    return err ? -1 : 0;
}

/* C = A @ B (+ bias, ReLU); see the top of the file. Returns 0, or -1 on allocation failure. */
int amx_gemm_bf16(const uint16_t *a, long lda, const uint16_t *b, long ldb, int b_trans,
                  uint16_t *c, long ldc, long m, long n, long k,
                  const uint16_t *bias, int relu, int nthreads) {
    job_t j;
    memset(&j, 0, sizeof j);
    j.a = a; j.b = b; j.bias = bias; j.c = c;
    j.m = m; j.n = n; j.k = k; j.lda = lda; j.ldb = ldb; j.ldc = ldc;
    j.b_trans = b_trans; j.relu = relu;
    pthread_mutex_lock(&g_lock);
    int rc = run(&j, nthreads);
    pthread_mutex_unlock(&g_lock);
    return rc;
}

/* Input gradient fused with the ReLU backward (see epilogue_relu_bwd): g = A @ B as
 * amx_gemm_bf16 (no bias) never leaves the tiles; writes dz (M x N bf16, stride lddz), db (N fp32)
 * and, when ht is not NULL, ht = h^T (N x M bf16, stride ldht), from h (M x N bf16, stride ldh),
 * the layer's output. Returns 0, or -1 on allocation failure. */
int amx_dgrad_relu_bf16(const uint16_t *a, long lda, const uint16_t *b, long ldb, int b_trans,
                        uint16_t *dz, long lddz, long m, long n, long k,
                        const uint16_t *h, long ldh, float scale, float *db, uint16_t *ht, long ldht,
                        int nthreads) {
    job_t j;
    memset(&j, 0, sizeof j);
    j.a = a; j.b = b; j.c = dz;
    j.m = m; j.n = n; j.k = k; j.lda = lda; j.ldb = ldb; j.ldc = lddz;
    j.b_trans = b_trans;
    j.h = h; j.ldh = ldh; j.scale = scale; j.db = db; j.ht = ht; j.ldht = ldht;
    pthread_mutex_lock(&g_lock);
    j.part = scratch(&g_part, (size_t)n * sizeof(float));
    int rc = j.part ? run(&j, nthreads) : -1;
    pthread_mutex_unlock(&g_lock);
    return rc;
}
