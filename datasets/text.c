/* Character-level corpora: strict UTF-8 decoding, the code point
 * vocabulary, encoding and decoding, the train/validation split and the
 * window sampler. See text.h for the contracts.
 *
 * Loading decodes the file twice rather than keeping a decoded copy. The
 * first pass validates it, counts the code points and marks the ones that
 * occur in a bitmap over all of Unicode (139 KB). The second pass writes the
 * token ids. Peak memory is the file plus 4 bytes per code point.
 */
#include "text.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CODE_POINT_LIMIT 0x110000u  /* one past U+10FFFF */
#define SMALL_TABLE_SIZE 256        /* code points looked up by table, not search */

struct tg_text_vocab {
    int size;
    uint32_t *code_points;                /* (size) strictly increasing */
    int32_t small_ids[SMALL_TABLE_SIZE];  /* id of each code point below 256, or -1 */
};

struct tg_text_corpus {
    char *path;
    tg_text_vocab *vocab;
    int32_t *tokens;  /* (size) */
    size_t size;
};

/* ---- UTF-8 --------------------------------------------------------------- */

/* Why the sequence starting at some byte is not UTF-8; messages print it
 * after "byte 0x..". */
typedef struct utf8_error {
    char reason[160];
} utf8_error;

static bool is_continuation(unsigned char byte) {
    return (byte & 0xC0u) == 0x80u;
}

/* Decodes the code point at s[0] of the n > 0 bytes left, by RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF. Returns its length in
 * bytes, or 0 with *error filled. As in Python's decoder, the error concerns
 * the sequence that starts at s[0]. */
static int utf8_decode(const unsigned char *s, size_t n, uint32_t *code_point,
                       utf8_error *error) {
    unsigned char lead = s[0];
    if (lead < 0x80u) {
        *code_point = lead;
        return 1;
    }

    /* The lead byte fixes the length and the range allowed for the second
     * byte. The narrow ranges exclude overlong forms, surrogates and code
     * points above U+10FFFF. */
    const char *bad_lead = NULL;
    int length = 0;
    unsigned char low = 0x80u;
    unsigned char high = 0xBFu;
    const char *narrow_range = NULL;
    if (lead < 0xC0u) {
        bad_lead = "is a continuation byte with no lead byte before it";
    } else if (lead < 0xC2u) {
        bad_lead = "can only begin an overlong encoding";
    } else if (lead < 0xE0u) {
        length = 2;
    } else if (lead < 0xF0u) {
        length = 3;
        if (lead == 0xE0u) {
            low = 0xA0u;
            narrow_range = "an overlong encoding";
        } else if (lead == 0xEDu) {
            high = 0x9Fu;
            narrow_range = "a UTF-16 surrogate";
        }
    } else if (lead < 0xF5u) {
        length = 4;
        if (lead == 0xF0u) {
            low = 0x90u;
            narrow_range = "an overlong encoding";
        } else if (lead == 0xF4u) {
            high = 0x8Fu;
            narrow_range = "a code point above U+10FFFF";
        }
    } else {
        bad_lead = "never occurs in UTF-8";
    }
    if (bad_lead != NULL) {
        snprintf(error->reason, sizeof error->reason, "%s", bad_lead);
        return 0;
    }

    uint32_t value = lead & (0x7Fu >> length);
    for (int k = 1; k < length; k++) {
        if ((size_t)k >= n) {
            snprintf(error->reason, sizeof error->reason, "starts a %d-byte sequence that the end "
                     "of the data cuts off", length);
            return 0;
        }
        unsigned char byte = s[k];
        if (!is_continuation(byte)) {
            snprintf(error->reason, sizeof error->reason, "starts a %d-byte sequence, but byte "
                     "0x%02x at +%d is not a continuation byte (0x80-0xbf)", length, byte, k);
            return 0;
        }
        if (k == 1 && (byte < low || byte > high)) {
            snprintf(error->reason, sizeof error->reason, "starts a %d-byte sequence, but the "
                     "next byte 0x%02x makes it %s (0x%02x-0x%02x must follow 0x%02x)", length,
                     byte, narrow_range, low, high, lead);
            return 0;
        }
        value = (value << 6) | (byte & 0x3Fu);
    }
    *code_point = value;
    return length;
}

/* Writes the UTF-8 form of a valid code point to out and returns its length. */
static int utf8_encode(uint32_t code_point, char *out) {
    if (code_point < 0x80u) {
        out[0] = (char)code_point;
        return 1;
    }
    if (code_point < 0x800u) {
        out[0] = (char)(0xC0u | (code_point >> 6));
        out[1] = (char)(0x80u | (code_point & 0x3Fu));
        return 2;
    }
    if (code_point < 0x10000u) {
        out[0] = (char)(0xE0u | (code_point >> 12));
        out[1] = (char)(0x80u | ((code_point >> 6) & 0x3Fu));
        out[2] = (char)(0x80u | (code_point & 0x3Fu));
        return 3;
    }
    out[0] = (char)(0xF0u | (code_point >> 18));
    out[1] = (char)(0x80u | ((code_point >> 12) & 0x3Fu));
    out[2] = (char)(0x80u | ((code_point >> 6) & 0x3Fu));
    out[3] = (char)(0x80u | (code_point & 0x3Fu));
    return 4;
}

/* Formats a code point for a message: 'x' (U+0078) when printable, else
 * U+000A alone, so control characters do not break the message. */
static void describe_code_point(char *buf, size_t buf_size, uint32_t code_point) {
    if (code_point >= 0x20u && code_point != 0x7Fu && (code_point < 0x80u || code_point > 0x9Fu)) {
        char utf8[TG_UTF8_MAX_BYTES + 1] = {0};
        utf8_encode(code_point, utf8);
        snprintf(buf, buf_size, "'%s' (U+%04X)", utf8, (unsigned)code_point);
    } else {
        snprintf(buf, buf_size, "U+%04X", (unsigned)code_point);
    }
}

/* ---- Vocabulary ---------------------------------------------------------- */

static bool is_scalar_value(uint32_t code_point) {
    return code_point < CODE_POINT_LIMIT && (code_point < 0xD800u || code_point > 0xDFFFu);
}

/* Takes ownership of `code_points` (size entries, already validated). */
static tg_status vocab_new(uint32_t *code_points, int size, tg_text_vocab **out) {
    tg_text_vocab *vocab = malloc(sizeof *vocab);
    if (vocab == NULL) {
        free(code_points);
        return tg_set_error(TG_ERR_NOMEM, "text vocab: out of memory");
    }
    vocab->size = size;
    vocab->code_points = code_points;
    for (int i = 0; i < SMALL_TABLE_SIZE; i++) {
        vocab->small_ids[i] = -1;
    }
    for (int i = 0; i < size && code_points[i] < SMALL_TABLE_SIZE; i++) {
        vocab->small_ids[code_points[i]] = i;
    }
    *out = vocab;
    return TG_OK;
}

tg_status tg_text_vocab_from_code_points(const uint32_t *code_points, int size,
                                         tg_text_vocab **vocab) {
    *vocab = NULL;
    if (size < 1) {
        return tg_set_error(TG_ERR_INVALID, "text vocab: invalid size %d; a vocabulary needs at "
                            "least one code point", size);
    }
    for (int i = 0; i < size; i++) {
        if (!is_scalar_value(code_points[i])) {
            return tg_set_error(TG_ERR_INVALID, "text vocab: code point %d is 0x%X, which is not "
                                "a Unicode scalar value (U+0000-U+D7FF or U+E000-U+10FFFF)", i,
                                (unsigned)code_points[i]);
        }
        if (i > 0 && code_points[i] <= code_points[i - 1]) {
            return tg_set_error(TG_ERR_INVALID, "text vocab: code point %d is U+%04X but code "
                                "point %d is U+%04X; the code points must be strictly increasing",
                                i, (unsigned)code_points[i], i - 1, (unsigned)code_points[i - 1]);
        }
    }
    uint32_t *copy = malloc((size_t)size * sizeof *copy);
    if (copy == NULL) {
        return tg_set_error(TG_ERR_NOMEM, "text vocab: out of memory copying %d code points", size);
    }
    memcpy(copy, code_points, (size_t)size * sizeof *copy);
    return vocab_new(copy, size, vocab);
}

void tg_text_vocab_free(tg_text_vocab *vocab) {
    if (vocab == NULL) {
        return;
    }
    free(vocab->code_points);
    free(vocab);
}

int tg_text_vocab_size(const tg_text_vocab *vocab) {
    return vocab->size;
}

const uint32_t *tg_text_vocab_code_points(const tg_text_vocab *vocab) {
    return vocab->code_points;
}

int32_t tg_text_vocab_id(const tg_text_vocab *vocab, uint32_t code_point) {
    if (code_point < SMALL_TABLE_SIZE) {
        return vocab->small_ids[code_point];
    }
    int low = 0;
    int high = vocab->size;
    while (low < high) {
        int mid = low + (high - low) / 2;
        if (vocab->code_points[mid] < code_point) {
            low = mid + 1;
        } else {
            high = mid;
        }
    }
    if (low < vocab->size && vocab->code_points[low] == code_point) {
        return low;
    }
    return -1;
}

tg_status tg_text_vocab_encode(const tg_text_vocab *vocab, const char *text, size_t text_bytes,
                               int32_t *ids, size_t max_ids, size_t *n_ids) {
    const unsigned char *s = (const unsigned char *)text;
    size_t count = 0;
    size_t i = 0;
    while (i < text_bytes) {
        uint32_t code_point;
        utf8_error error;
        int length = utf8_decode(s + i, text_bytes - i, &code_point, &error);
        if (length == 0) {
            return tg_set_error(TG_ERR_FORMAT, "text vocab encode: invalid UTF-8 at byte offset "
                                "%zu (byte 0x%02x %s); pass UTF-8 text", i, s[i], error.reason);
        }
        int32_t id = tg_text_vocab_id(vocab, code_point);
        if (id < 0) {
            char what[32];
            describe_code_point(what, sizeof what, code_point);
            return tg_set_error(TG_ERR_INVALID, "text vocab encode: character %s at position %zu "
                                "(byte offset %zu) is not in the vocabulary of %d characters; "
                                "use only characters of the training text", what, count, i,
                                vocab->size);
        }
        if (count == max_ids) {
            return tg_set_error(TG_ERR_INVALID, "text vocab encode: the text has more than %zu "
                                "characters, the size of the ids buffer; pass a buffer of "
                                "text_bytes = %zu ids", max_ids, text_bytes);
        }
        ids[count++] = id;
        i += (size_t)length;
    }
    *n_ids = count;
    return TG_OK;
}

tg_status tg_text_vocab_decode(const tg_text_vocab *vocab, const int32_t *ids, size_t n_ids,
                               char *text, size_t text_capacity, size_t *text_bytes) {
    size_t length = 0;
    for (size_t i = 0; i < n_ids; i++) {
        if (ids[i] < 0 || ids[i] >= vocab->size) {
            return tg_set_error(TG_ERR_INVALID, "text vocab decode: token id %d at position %zu "
                                "is outside the vocabulary [0, %d)", (int)ids[i], i, vocab->size);
        }
        char utf8[TG_UTF8_MAX_BYTES];
        int n = utf8_encode(vocab->code_points[ids[i]], utf8);
        if (length + (size_t)n + 1 > text_capacity) {
            return tg_set_error(TG_ERR_INVALID, "text vocab decode: a buffer of %zu bytes is too "
                                "small for %zu tokens; pass n_ids * TG_UTF8_MAX_BYTES + 1 = %zu "
                                "bytes", text_capacity, n_ids,
                                n_ids * TG_UTF8_MAX_BYTES + 1);
        }
        memcpy(text + length, utf8, (size_t)n);
        length += (size_t)n;
    }
    if (text_capacity < 1) {
        return tg_set_error(TG_ERR_INVALID, "text vocab decode: a buffer of 0 bytes has no room "
                            "for the terminating NUL; pass at least 1 byte");
    }
    text[length] = '\0';
    if (text_bytes != NULL) {
        *text_bytes = length;
    }
    return TG_OK;
}

/* ---- Corpus -------------------------------------------------------------- */

/* Reads a whole file into a new buffer. Reads until EOF rather than trusting a
 * size from the file system, so pipes and special files work too. */
static tg_status read_file(const char *path, char **data, size_t *size) {
    FILE *file = fopen(path, "rb");
    if (file == NULL) {
        return tg_set_error(TG_ERR_IO, "text corpus: cannot open '%s': %s; check the path",
                            path, strerror(errno));
    }
    struct stat info;
    if (fstat(fileno(file), &info) == 0 && S_ISDIR(info.st_mode)) {
        fclose(file);
        return tg_set_error(TG_ERR_IO, "text corpus: '%s' is a folder; pass the path of a text "
                            "file", path);
    }
    size_t capacity = 1 << 16;
    size_t length = 0;
    char *buffer = malloc(capacity);
    while (buffer != NULL) {
        length += fread(buffer + length, 1, capacity - length, file);
        if (length < capacity) {
            break;
        }
        char *grown = capacity <= SIZE_MAX / 2 ? realloc(buffer, capacity * 2) : NULL;
        if (grown == NULL) {
            free(buffer);
            buffer = NULL;
            break;
        }
        buffer = grown;
        capacity *= 2;
    }
    if (buffer == NULL) {
        fclose(file);
        return tg_set_error(TG_ERR_NOMEM, "text corpus: out of memory reading '%s' (%zu bytes "
                            "read so far)", path, length);
    }
    if (ferror(file)) {
        int saved_errno = errno;
        free(buffer);
        fclose(file);
        return tg_set_error(TG_ERR_IO, "text corpus: reading '%s' failed after %zu bytes: %s",
                            path, length, strerror(saved_errno));
    }
    fclose(file);
    *data = buffer;
    *size = length;
    return TG_OK;
}

/* First pass: validates the UTF-8, counts the code points and sets the bit of
 * each code point that occurs. */
static tg_status scan_text(const unsigned char *s, size_t n, const char *name, uint64_t *seen,
                           size_t *count) {
    size_t code_points = 0;
    size_t i = 0;
    while (i < n) {
        uint32_t code_point;
        utf8_error error;
        int length = utf8_decode(s + i, n - i, &code_point, &error);
        if (length == 0) {
            return tg_set_error(TG_ERR_FORMAT, "text corpus '%s': invalid UTF-8 at byte offset "
                                "%zu (byte 0x%02x %s); convert the file to UTF-8, e.g. with "
                                "iconv -f latin1 -t utf-8", name, i, s[i], error.reason);
        }
        seen[code_point / 64] |= UINT64_C(1) << (code_point % 64);
        code_points++;
        i += (size_t)length;
    }
    *count = code_points;
    return TG_OK;
}

/* Builds the vocabulary from the bitmap of code points that occur. */
static tg_status vocab_from_bitmap(const uint64_t *seen, tg_text_vocab **vocab) {
    int size = 0;
    for (uint32_t w = 0; w < CODE_POINT_LIMIT / 64; w++) {
        for (uint64_t bits = seen[w]; bits != 0; bits &= bits - 1) {
            size++;
        }
    }
    uint32_t *code_points = malloc((size_t)size * sizeof *code_points);
    if (code_points == NULL) {
        return tg_set_error(TG_ERR_NOMEM, "text vocab: out of memory for %d code points", size);
    }
    int k = 0;
    for (uint32_t c = 0; c < CODE_POINT_LIMIT; c++) {
        if (seen[c / 64] & (UINT64_C(1) << (c % 64))) {
            code_points[k++] = c;
        }
    }
    return vocab_new(code_points, size, vocab);
}

/* Second pass over text already validated by scan_text. */
static void encode_valid_text(const tg_text_vocab *vocab, const unsigned char *s, size_t n,
                              int32_t *tokens) {
    size_t count = 0;
    size_t i = 0;
    while (i < n) {
        uint32_t code_point;
        utf8_error unused;
        int length = utf8_decode(s + i, n - i, &code_point, &unused);
        tokens[count++] = tg_text_vocab_id(vocab, code_point);
        i += (size_t)length;
    }
}

tg_status tg_text_corpus_from_buffer(const char *text, size_t text_bytes, const char *name,
                                     tg_text_corpus **corpus) {
    *corpus = NULL;
    if (text_bytes == 0) {
        return tg_set_error(TG_ERR_FORMAT, "text corpus '%s' is empty (0 bytes); pass a text "
                            "file longer than the block size", name);
    }
    tg_text_corpus *c = calloc(1, sizeof *c);
    uint64_t *seen = calloc(CODE_POINT_LIMIT / 64, sizeof *seen);
    size_t name_bytes = strlen(name) + 1;
    if (c != NULL) {
        c->path = malloc(name_bytes);
    }
    if (c == NULL || seen == NULL || c->path == NULL) {
        free(seen);
        tg_text_corpus_free(c);
        return tg_set_error(TG_ERR_NOMEM, "text corpus '%s': out of memory", name);
    }
    memcpy(c->path, name, name_bytes);

    const unsigned char *s = (const unsigned char *)text;
    tg_status status = scan_text(s, text_bytes, name, seen, &c->size);
    if (status == TG_OK) {
        status = vocab_from_bitmap(seen, &c->vocab);
    }
    free(seen);
    if (status == TG_OK) {
        c->tokens = malloc(c->size * sizeof *c->tokens);
        if (c->tokens == NULL) {
            status = tg_set_error(TG_ERR_NOMEM, "text corpus '%s': out of memory for %zu token "
                                  "ids", name, c->size);
        }
    }
    if (status != TG_OK) {
        tg_text_corpus_free(c);
        return status;
    }
    encode_valid_text(c->vocab, s, text_bytes, c->tokens);
    *corpus = c;
    return TG_OK;
}

tg_status tg_text_corpus_load(const char *path, tg_text_corpus **corpus) {
    *corpus = NULL;
    char *data = NULL;
    size_t size = 0;
    tg_status status = read_file(path, &data, &size);
    if (status != TG_OK) {
        return status;
    }
    status = tg_text_corpus_from_buffer(data, size, path, corpus);
    free(data);
    return status;
}

void tg_text_corpus_free(tg_text_corpus *corpus) {
    if (corpus == NULL) {
        return;
    }
    free(corpus->path);
    tg_text_vocab_free(corpus->vocab);
    free(corpus->tokens);
    free(corpus);
}

const tg_text_vocab *tg_text_corpus_vocab(const tg_text_corpus *corpus) {
    return corpus->vocab;
}

const int32_t *tg_text_corpus_tokens(const tg_text_corpus *corpus) {
    return corpus->tokens;
}

size_t tg_text_corpus_size(const tg_text_corpus *corpus) {
    return corpus->size;
}

const char *tg_text_corpus_path(const tg_text_corpus *corpus) {
    return corpus->path;
}

tg_status tg_text_corpus_split(const tg_text_corpus *corpus, double train_fraction,
                               int block_size, tg_text_split *train, tg_text_split *val) {
    if (!(train_fraction > 0.0 && train_fraction < 1.0)) {
        return tg_set_error(TG_ERR_INVALID, "text corpus split: invalid train fraction %g; it "
                            "must lie in (0, 1), e.g. %g", train_fraction,
                            TG_TEXT_TRAIN_FRACTION);
    }
    if (block_size < 1) {
        return tg_set_error(TG_ERR_INVALID, "text corpus split: invalid block size %d; it must "
                            "be at least 1", block_size);
    }
    size_t n = corpus->size;
    size_t n_train = (size_t)floor(train_fraction * (double)n);
    size_t n_val = n - n_train;
    size_t needed = (size_t)block_size + 1;
    if (n_train < needed || n_val < needed) {
        return tg_set_error(TG_ERR_INVALID, "text corpus '%s' is too short: its %zu tokens split "
                            "at fraction %g into %zu train and %zu validation tokens, but block "
                            "size %d needs at least %zu in each; use a longer text or a smaller "
                            "block size", corpus->path, n, train_fraction, n_train, n_val,
                            block_size, needed);
    }
    *train = (tg_text_split){corpus->tokens, n_train};
    *val = (tg_text_split){corpus->tokens + n_train, n_val};
    return TG_OK;
}

/* ---- Batches ------------------------------------------------------------- */

void tg_text_sampler_init(tg_text_sampler *sampler, uint64_t seed) {
    tg_rng_seed(&sampler->rng, seed);
    sampler->batches = 0;
}

tg_status tg_text_sampler_next(tg_text_sampler *sampler, const tg_text_split *split,
                               int batch_size, int block_size, int32_t *x, int32_t *y) {
    if (batch_size < 1 || block_size < 1) {
        return tg_set_error(TG_ERR_INVALID, "text sampler: invalid batch size %d or block size "
                            "%d; both must be at least 1", batch_size, block_size);
    }
    size_t T = (size_t)block_size;
    if (split->size < T + 1) {
        return tg_set_error(TG_ERR_INVALID, "text sampler: the split has %zu tokens, but block "
                            "size %d needs at least %zu; use a smaller block size", split->size,
                            block_size, T + 1);
    }
    uint64_t n_starts = (uint64_t)(split->size - T);
    for (int b = 0; b < batch_size; b++) {
        size_t start = (size_t)tg_rng_below(&sampler->rng, n_starts);
        const int32_t *window = split->tokens + start;
        memcpy(x + (size_t)b * T, window, T * sizeof *x);
        memcpy(y + (size_t)b * T, window + 1, T * sizeof *y);
    }
    sampler->batches++;
    return TG_OK;
}
