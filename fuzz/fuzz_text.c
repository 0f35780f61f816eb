/* Fuzz target for the text corpus loader (datasets/text.h).
 *
 * Each input is a corpus for tg_text_corpus_from_buffer. The driver checks
 * that it loads exactly when it is non-empty, well-formed UTF-8 by the
 * Unicode Standard's table of byte sequences, and that a rejection names the
 * offset of the first invalid sequence. If it loads, the driver checks that
 *   - the vocabulary is strictly increasing Unicode scalar values, rebuilds
 *     with tg_text_vocab_from_code_points and maps each code point to its id;
 *   - encoding the text gives the corpus's tokens, and decoding them gives
 *     the input bytes back (so no overlong form or other non-shortest
 *     sequence was accepted);
 *   - a split and a sampled batch, with a block size and train fraction
 *     taken from the input, stay inside the corpus and shift y by one.
 * Separately, the input read as an array of uint32 is offered to
 * tg_text_vocab_from_code_points, and a vocabulary it accepts must map every
 * code point to its index. Failures must be known statuses with a message.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/text.h"
#include "fuzz_util.h"

#define BATCH 3

/* Returns the length of the well-formed UTF-8 sequence at s[0] of the n > 0
 * bytes left, or 0 if the bytes there are not one, following the table of
 * well-formed byte sequences in the Unicode Standard (section 3.9, table
 * 3-7) rather than text.c's decoder. */
static size_t well_formed_length(const uint8_t *s, size_t n) {
    static const struct {
        uint8_t lead_low, lead_high, second_low, second_high;
        size_t length;
    } rows[] = {
        {0x00, 0x7F, 0, 0, 1},       {0xC2, 0xDF, 0x80, 0xBF, 2}, {0xE0, 0xE0, 0xA0, 0xBF, 3},
        {0xE1, 0xEC, 0x80, 0xBF, 3}, {0xED, 0xED, 0x80, 0x9F, 3}, {0xEE, 0xEF, 0x80, 0xBF, 3},
        {0xF0, 0xF0, 0x90, 0xBF, 4}, {0xF1, 0xF3, 0x80, 0xBF, 4}, {0xF4, 0xF4, 0x80, 0x8F, 4},
    };
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        if (s[0] < rows[r].lead_low || s[0] > rows[r].lead_high) {
            continue;
        }
        size_t length = rows[r].length;
        if (length > n) {
            return 0;
        }
        if (length >= 2 && (s[1] < rows[r].second_low || s[1] > rows[r].second_high)) {
            return 0;
        }
        for (size_t k = 2; k < length; k++) {
            if (s[k] < 0x80 || s[k] > 0xBF) {
                return 0;
            }
        }
        return length;
    }
    return 0;
}

/* Returns the offset of the first sequence that is not well-formed UTF-8,
 * or size if all of data is. */
static size_t first_invalid_offset(const uint8_t *data, size_t size) {
    size_t i = 0;
    while (i < size) {
        size_t length = well_formed_length(data + i, size - i);
        if (length == 0) {
            return i;
        }
        i += length;
    }
    return size;
}

/* Checks a failed load against first_invalid_offset: an empty input, or a
 * format error whose message names the offset where the invalid sequence
 * starts. */
static void check_rejection(tg_status status, const uint8_t *data, size_t size) {
    if (status == TG_ERR_NOMEM) {
        return;
    }
    size_t bad = first_invalid_offset(data, size);
    FUZZ_CHECK(size == 0 || bad < size, "valid %zu-byte UTF-8 text was rejected: %s", size,
               tg_last_error());
    if (size == 0) {
        return;
    }
    char expected[64];
    snprintf(expected, sizeof expected, "at byte offset %zu ", bad);
    FUZZ_CHECK(strstr(tg_last_error(), expected) != NULL,
               "the first invalid sequence starts at byte %zu, but the message says: %s", bad,
               tg_last_error());
}

static void check_vocab(const tg_text_vocab *vocab) {
    int size = tg_text_vocab_size(vocab);
    const uint32_t *code_points = tg_text_vocab_code_points(vocab);
    FUZZ_CHECK(size >= 1, "vocabulary of size %d", size);
    for (int i = 0; i < size; i++) {
        uint32_t c = code_points[i];
        FUZZ_CHECK(c <= 0x10FFFFu && (c < 0xD800u || c > 0xDFFFu),
                   "vocabulary entry %d is 0x%X, not a Unicode scalar value", i, (unsigned)c);
        FUZZ_CHECK(i == 0 || c > code_points[i - 1], "vocabulary entry %d (U+%04X) is not above "
                   "entry %d (U+%04X)", i, (unsigned)c, i - 1, (unsigned)code_points[i - 1]);
        FUZZ_CHECK(tg_text_vocab_id(vocab, c) == i, "U+%04X maps to id %d, expected %d",
                   (unsigned)c, (int)tg_text_vocab_id(vocab, c), i);
    }
}

static void check_rebuild(const tg_text_vocab *vocab) {
    tg_text_vocab *copy = NULL;
    tg_status status = tg_text_vocab_from_code_points(tg_text_vocab_code_points(vocab),
                                                      tg_text_vocab_size(vocab), &copy);
    FUZZ_CHECK(status == TG_OK, "rebuilding the corpus vocabulary failed: %s", tg_last_error());
    FUZZ_CHECK(tg_text_vocab_size(copy) == tg_text_vocab_size(vocab) &&
                   memcmp(tg_text_vocab_code_points(copy), tg_text_vocab_code_points(vocab),
                          (size_t)tg_text_vocab_size(vocab) * sizeof(uint32_t)) == 0,
               "the rebuilt vocabulary differs");
    tg_text_vocab_free(copy);
}

static void check_round_trip(const tg_text_corpus *corpus, const uint8_t *data, size_t size) {
    const tg_text_vocab *vocab = tg_text_corpus_vocab(corpus);
    size_t n = tg_text_corpus_size(corpus);
    const int32_t *tokens = tg_text_corpus_tokens(corpus);
    FUZZ_CHECK(n >= 1 && n <= size, "%zu tokens from %zu bytes", n, size);
    /* Every token is in the vocabulary, and every vocabulary entry occurs. */
    int vocab_size = tg_text_vocab_size(vocab);
    bool *occurs = calloc((size_t)vocab_size, sizeof *occurs);
    FUZZ_CHECK(occurs != NULL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        FUZZ_CHECK(tokens[i] >= 0 && tokens[i] < vocab_size, "token %zu is %d, outside [0, %d)",
                   i, (int)tokens[i], vocab_size);
        occurs[tokens[i]] = true;
    }
    for (int id = 0; id < vocab_size; id++) {
        FUZZ_CHECK(occurs[id], "vocabulary entry %d (U+%04X) does not occur in the text", id,
                   (unsigned)tg_text_vocab_code_points(vocab)[id]);
    }
    free(occurs);

    int32_t *ids = malloc(size * sizeof *ids);
    char *text = malloc(n * TG_UTF8_MAX_BYTES + 1);
    FUZZ_CHECK(ids != NULL && text != NULL, "out of memory");
    size_t n_ids = 0;
    tg_status status = tg_text_vocab_encode(vocab, (const char *)data, size, ids, size, &n_ids);
    FUZZ_CHECK(status == TG_OK, "encoding the corpus text failed: %s", tg_last_error());
    FUZZ_CHECK(n_ids == n && memcmp(ids, tokens, n * sizeof *ids) == 0,
               "encoding gives %zu ids, different from the corpus's %zu tokens", n_ids, n);

    size_t text_bytes = 0;
    status = tg_text_vocab_decode(vocab, tokens, n, text, n * TG_UTF8_MAX_BYTES + 1, &text_bytes);
    FUZZ_CHECK(status == TG_OK, "decoding the corpus tokens failed: %s", tg_last_error());
    FUZZ_CHECK(text_bytes == size && memcmp(text, data, size) == 0 && text[size] == '\0',
               "decoding gives %zu bytes, not the %zu input bytes", text_bytes, size);

    /* One byte too few for the text and its NUL must fail cleanly. */
    status = tg_text_vocab_decode(vocab, tokens, n, text, size, NULL);
    FUZZ_CHECK(status == TG_ERR_INVALID, "decoding into %zu bytes returned %s", size,
               tg_status_name(status));
    free(ids);
    free(text);
}

static void check_split_and_batch(const tg_text_corpus *corpus, const uint8_t *data,
                                  size_t size) {
    int block_size = 1 + data[0] % 16;
    double fraction = (data[size - 1] + 1) / 257.0;
    tg_text_split train;
    tg_text_split val;
    tg_status status = tg_text_corpus_split(corpus, fraction, block_size, &train, &val);
    if (status != TG_OK) {
        fuzz_check_error(status, "tg_text_corpus_split");
        FUZZ_CHECK(status == TG_ERR_INVALID, "split returned %s", tg_status_name(status));
        return;
    }
    size_t n = tg_text_corpus_size(corpus);
    const int32_t *tokens = tg_text_corpus_tokens(corpus);
    FUZZ_CHECK(train.tokens == tokens && val.tokens == tokens + train.size &&
                   train.size + val.size == n,
               "splits of %zu and %zu tokens do not tile the %zu tokens", train.size, val.size,
               n);
    FUZZ_CHECK(train.size > (size_t)block_size && val.size > (size_t)block_size,
               "split sizes %zu and %zu do not fit block size %d", train.size, val.size,
               block_size);

    tg_text_sampler sampler;
    tg_text_sampler_init(&sampler, data[0]);
    int32_t x[BATCH * 16];
    int32_t y[BATCH * 16];
    status = tg_text_sampler_next(&sampler, &val, BATCH, block_size, x, y);
    FUZZ_CHECK(status == TG_OK, "sampling the validation split failed: %s", tg_last_error());
    for (int b = 0; b < BATCH; b++) {
        for (int t = 0; t + 1 < block_size; t++) {
            FUZZ_CHECK(y[b * block_size + t] == x[b * block_size + t + 1],
                       "y is not x shifted by one at batch %d, position %d", b, t);
        }
    }
    FUZZ_CHECK(sampler.batches == 1, "the sampler counts %llu batches",
               (unsigned long long)sampler.batches);

    /* A rejected request must leave the sampler as it was. */
    tg_text_sampler saved = sampler;
    status = tg_text_sampler_next(&sampler, &val, BATCH, (int)val.size, x, y);
    FUZZ_CHECK(status == TG_ERR_INVALID, "a block of the whole %zu-token split returned %s",
               val.size, tg_status_name(status));
    FUZZ_CHECK(memcmp(&saved, &sampler, sizeof saved) == 0, "a rejected draw changed the sampler");
}

/* Offers the input as an array of code points. */
static void check_vocab_from_words(const uint8_t *data, size_t size) {
    size_t count = size / sizeof(uint32_t);
    if (count == 0) {
        return;
    }
    uint32_t *code_points = malloc(count * sizeof *code_points);
    FUZZ_CHECK(code_points != NULL, "out of memory");
    memcpy(code_points, data, count * sizeof *code_points);
    tg_text_vocab *vocab = NULL;
    tg_status status = tg_text_vocab_from_code_points(code_points, (int)count, &vocab);
    if (status == TG_OK) {
        FUZZ_CHECK(tg_text_vocab_size(vocab) == (int)count, "vocabulary of %d from %zu",
                   tg_text_vocab_size(vocab), count);
        check_vocab(vocab);
        tg_text_vocab_free(vocab);
    } else {
        fuzz_check_error(status, "tg_text_vocab_from_code_points");
        FUZZ_CHECK(vocab == NULL, "a failed tg_text_vocab_from_code_points returned a vocabulary");
    }
    free(code_points);
}

tg_status fuzz_text_input(const uint8_t *data, size_t size) {
    tg_text_corpus *corpus = NULL;
    tg_status status = tg_text_corpus_from_buffer((const char *)data, size, "fuzz.txt", &corpus);
    if (status != TG_OK) {
        fuzz_check_error(status, "tg_text_corpus_from_buffer");
        FUZZ_CHECK(status == TG_ERR_FORMAT || status == TG_ERR_NOMEM,
                   "tg_text_corpus_from_buffer returned %s", tg_status_name(status));
        FUZZ_CHECK(corpus == NULL, "a failed load returned a corpus");
        FUZZ_CHECK(strstr(tg_last_error(), "fuzz.txt") != NULL, "the message does not name "
                   "the corpus: %s", tg_last_error());
        check_rejection(status, data, size);
    } else {
        FUZZ_CHECK(first_invalid_offset(data, size) == size,
                   "text with an invalid sequence at byte %zu loaded",
                   first_invalid_offset(data, size));
        check_vocab(tg_text_corpus_vocab(corpus));
        check_rebuild(tg_text_corpus_vocab(corpus));
        check_round_trip(corpus, data, size);
        check_split_and_batch(corpus, data, size);
        tg_text_corpus_free(corpus);
    }
    check_vocab_from_words(data, size);
    return status;
}

#ifdef TG_FUZZ_ENTRY_POINT
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_text_input(data, size);
    return 0;
}
#endif
