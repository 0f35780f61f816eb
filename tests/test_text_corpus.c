/* Character-level corpora: vocabulary order, UTF-8 validation, encoding and
 * decoding, the train/validation split and the window sampler. Fixtures live
 * in $TAPEGRAD_TEST_DATA/text, and inputs with broken bytes are built in
 * memory. */

#include <criterion/criterion.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tapegrad.h"

/* nanoGPT's vocabulary of tiny Shakespeare, sorted(set(text)) in Python. */
static const char shakespeare_chars[] =
    "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static void data_path(char *buf, size_t size, const char *relative) {
    const char *root = getenv("TAPEGRAD_TEST_DATA");
    cr_assert_not_null(root, "TAPEGRAD_TEST_DATA is not set; run the tests through ctest");
    snprintf(buf, size, "%s/%s", root, relative);
}

static tg_text_corpus *load_fixture(const char *relative) {
    char path[512];
    data_path(path, sizeof path, relative);
    tg_text_corpus *corpus = NULL;
    tg_status status = tg_text_corpus_load(path, &corpus);
    cr_assert_eq(status, TG_OK, "loading %s: %s", path, tg_last_error());
    return corpus;
}

static tg_text_corpus *corpus_from_string(const char *text) {
    tg_text_corpus *corpus = NULL;
    tg_status status = tg_text_corpus_from_buffer(text, strlen(text), "memory", &corpus);
    cr_assert_eq(status, TG_OK, "%s", tg_last_error());
    return corpus;
}

static void expect_message_contains(const char *needle) {
    const char *message = tg_last_error();
    cr_assert(strstr(message, needle) != NULL, "expected \"%s\" in the message: %s", needle,
              message);
}

static char *read_whole_file(const char *path, size_t *size) {
    FILE *file = fopen(path, "rb");
    cr_assert_not_null(file, "cannot open %s", path);
    char *data = malloc(1 << 16);
    *size = fread(data, 1, 1 << 16, file);
    fclose(file);
    return data;
}

/* ---- Vocabulary ---------------------------------------------------------- */

Test(text_corpus, ascii_vocab_is_sorted_byte_set) {
    tg_text_corpus *corpus = load_fixture("text/tiny.txt");
    char path[512];
    data_path(path, sizeof path, "text/tiny.txt");
    size_t size;
    char *bytes = read_whole_file(path, &size);

    bool present[128] = {false};
    for (size_t i = 0; i < size; i++) {
        present[(unsigned char)bytes[i]] = true;
    }
    uint32_t expected[128];
    int expected_size = 0;
    for (int c = 0; c < 128; c++) {
        if (present[c]) {
            expected[expected_size++] = (uint32_t)c;
        }
    }

    const tg_text_vocab *vocab = tg_text_corpus_vocab(corpus);
    cr_assert_eq(tg_text_vocab_size(vocab), expected_size, "vocab size %d, expected %d",
                 tg_text_vocab_size(vocab), expected_size);
    const uint32_t *code_points = tg_text_vocab_code_points(vocab);
    for (int i = 0; i < expected_size; i++) {
        cr_assert_eq(code_points[i], expected[i], "code point %d is %u, expected %u", i,
                     code_points[i], expected[i]);
    }
    cr_assert_eq(tg_text_corpus_size(corpus), size, "%zu tokens for %zu ASCII bytes",
                 tg_text_corpus_size(corpus), size);
    const int32_t *tokens = tg_text_corpus_tokens(corpus);
    for (size_t i = 0; i < size; i++) {
        int32_t id = tokens[i];
        cr_assert(id >= 0 && id < expected_size, "token %zu is %d", i, id);
        cr_assert_eq(code_points[id], (uint32_t)(unsigned char)bytes[i],
                     "token %zu decodes to %u, the file has %u", i, code_points[id],
                     (unsigned)(unsigned char)bytes[i]);
    }
    free(bytes);
    tg_text_corpus_free(corpus);
}

Test(text_corpus, shakespeare_characters_get_nanogpt_ids) {
    /* Every character of tiny Shakespeare's vocabulary, in a scrambled order
     * and repeated, must come out as nanoGPT's 65 ids. */
    size_t n = sizeof shakespeare_chars - 1;
    char text[3 * sizeof shakespeare_chars];
    for (size_t i = 0; i < 3 * n; i++) {
        text[i] = shakespeare_chars[(i * 7 + 3) % n];
    }
    text[3 * n] = '\0';
    tg_text_corpus *corpus = corpus_from_string(text);
    const tg_text_vocab *vocab = tg_text_corpus_vocab(corpus);
    cr_assert_eq(tg_text_vocab_size(vocab), 65, "vocab size %d", tg_text_vocab_size(vocab));
    for (int i = 0; i < 65; i++) {
        cr_assert_eq(tg_text_vocab_code_points(vocab)[i], (uint32_t)shakespeare_chars[i],
                     "id %d is code point %u, nanoGPT has %u", i,
                     tg_text_vocab_code_points(vocab)[i], (unsigned)shakespeare_chars[i]);
    }
    cr_assert_eq(tg_text_vocab_id(vocab, 'a'), 39, "id of 'a' is %d",
                 tg_text_vocab_id(vocab, 'a'));
    tg_text_corpus_free(corpus);
}

Test(text_corpus, multibyte_file_counts_code_points) {
    tg_text_corpus *corpus = load_fixture("text/utf8.txt");
    const tg_text_vocab *vocab = tg_text_corpus_vocab(corpus);
    /* "caf\u00e9 \u20ac5 \u2014 \u65e5\u672c \U0001f600\n" */
    const uint32_t expected[] = {0x0A, 0x20, 0x35, 0x61, 0x63, 0x66,
                                 0xE9, 0x2014, 0x20AC, 0x65E5, 0x672C, 0x1F600};
    int expected_size = (int)(sizeof expected / sizeof expected[0]);
    cr_assert_eq(tg_text_vocab_size(vocab), expected_size, "vocab size %d",
                 tg_text_vocab_size(vocab));
    for (int i = 0; i < expected_size; i++) {
        cr_assert_eq(tg_text_vocab_code_points(vocab)[i], expected[i],
                     "code point %d is U+%04X, expected U+%04X", i,
                     tg_text_vocab_code_points(vocab)[i], expected[i]);
    }
    cr_assert_eq(tg_text_corpus_size(corpus), 15, "%zu tokens, expected 15 code points",
                 tg_text_corpus_size(corpus));
    cr_assert_eq(tg_text_vocab_id(vocab, 0x1F600), 11);
    cr_assert_eq(tg_text_vocab_id(vocab, 0x672C), 10);
    cr_assert_eq(tg_text_vocab_id(vocab, 'z'), -1);
    cr_assert_eq(tg_text_vocab_id(vocab, 0x1F601), -1);
    tg_text_corpus_free(corpus);
}

Test(text_corpus, decode_restores_file_bytes) {
    const char *fixtures[] = {"text/tiny.txt", "text/utf8.txt"};
    for (int f = 0; f < 2; f++) {
        tg_text_corpus *corpus = load_fixture(fixtures[f]);
        char path[512];
        data_path(path, sizeof path, fixtures[f]);
        size_t size;
        char *bytes = read_whole_file(path, &size);

        size_t n = tg_text_corpus_size(corpus);
        size_t capacity = n * TG_UTF8_MAX_BYTES + 1;
        char *decoded = malloc(capacity);
        size_t decoded_bytes = 0;
        tg_status status = tg_text_vocab_decode(tg_text_corpus_vocab(corpus),
                                                tg_text_corpus_tokens(corpus), n, decoded,
                                                capacity, &decoded_bytes);
        cr_assert_eq(status, TG_OK, "%s", tg_last_error());
        cr_assert_eq(decoded_bytes, size, "%s: decoded %zu bytes, file has %zu", fixtures[f],
                     decoded_bytes, size);
        cr_assert(memcmp(decoded, bytes, size) == 0, "%s: decoded text differs", fixtures[f]);
        cr_assert_eq(decoded[size], '\0');
        free(decoded);
        free(bytes);
        tg_text_corpus_free(corpus);
    }
}

Test(text_corpus, prompt_encodes_to_corpus_ids) {
    tg_text_corpus *corpus = load_fixture("text/utf8.txt");
    const tg_text_vocab *vocab = tg_text_corpus_vocab(corpus);
    const char *prompt = "\xe6\x97\xa5 caf\xc3\xa9";  /* "日 café" */
    int32_t ids[16];
    size_t n_ids = 0;
    tg_status status = tg_text_vocab_encode(vocab, prompt, strlen(prompt), ids, 16, &n_ids);
    cr_assert_eq(status, TG_OK, "%s", tg_last_error());
    const int32_t expected[] = {9, 1, 4, 3, 5, 6};
    cr_assert_eq(n_ids, 6, "%zu ids", n_ids);
    for (int i = 0; i < 6; i++) {
        cr_assert_eq(ids[i], expected[i], "id %d is %d, expected %d", i, ids[i], expected[i]);
    }

    size_t empty_count = 99;
    cr_assert_eq(tg_text_vocab_encode(vocab, "", 0, ids, 16, &empty_count), TG_OK);
    cr_assert_eq(empty_count, 0);
    tg_text_corpus_free(corpus);
}

Test(text_corpus, prompt_with_unknown_character_is_rejected) {
    tg_text_corpus *corpus = load_fixture("text/utf8.txt");
    const tg_text_vocab *vocab = tg_text_corpus_vocab(corpus);
    int32_t ids[16];
    size_t n_ids;
    /* "café\u00fc": the u-umlaut is the 5th character, at byte offset 5. */
    const char *prompt = "caf\xc3\xa9\xc3\xbc";
    tg_status status = tg_text_vocab_encode(vocab, prompt, strlen(prompt), ids, 16, &n_ids);
    cr_assert_eq(status, TG_ERR_INVALID, "status %d", status);
    expect_message_contains("U+00FC");
    expect_message_contains("position 4");
    expect_message_contains("byte offset 5");

    status = tg_text_vocab_encode(vocab, "caf\n\t", 5, ids, 16, &n_ids);
    cr_assert_eq(status, TG_ERR_INVALID);
    expect_message_contains("U+0009 at position 4");
    tg_text_corpus_free(corpus);
}

Test(text_corpus, prompt_with_invalid_utf8_is_rejected) {
    tg_text_corpus *corpus = load_fixture("text/utf8.txt");
    int32_t ids[16];
    size_t n_ids;
    tg_status status = tg_text_vocab_encode(tg_text_corpus_vocab(corpus), "ca\xff", 3, ids, 16,
                                            &n_ids);
    cr_assert_eq(status, TG_ERR_FORMAT, "status %d", status);
    expect_message_contains("byte offset 2");
    expect_message_contains("0xff");
    tg_text_corpus_free(corpus);
}

Test(text_corpus, encode_rejects_small_ids_buffer) {
    tg_text_corpus *corpus = load_fixture("text/tiny.txt");
    int32_t ids[3];
    size_t n_ids;
    tg_status status = tg_text_vocab_encode(tg_text_corpus_vocab(corpus), "The lamp", 8, ids, 3,
                                            &n_ids);
    cr_assert_eq(status, TG_ERR_INVALID, "status %d", status);
    expect_message_contains("more than 3 characters");
    tg_text_corpus_free(corpus);
}

Test(text_corpus, decode_rejects_bad_id_and_small_buffer) {
    tg_text_corpus *corpus = load_fixture("text/utf8.txt");
    const tg_text_vocab *vocab = tg_text_corpus_vocab(corpus);
    char text[64];
    int32_t bad[3] = {0, 12, 1};
    cr_assert_eq(tg_text_vocab_decode(vocab, bad, 3, text, sizeof text, NULL), TG_ERR_INVALID);
    expect_message_contains("token id 12 at position 1");
    int32_t negative[1] = {-1};
    cr_assert_eq(tg_text_vocab_decode(vocab, negative, 1, text, sizeof text, NULL),
                 TG_ERR_INVALID);
    expect_message_contains("[0, 12)");

    /* The emoji takes 4 bytes plus the NUL: 4 bytes of room are too few. */
    int32_t emoji[1] = {11};
    cr_assert_eq(tg_text_vocab_decode(vocab, emoji, 1, text, 4, NULL), TG_ERR_INVALID);
    expect_message_contains("5 bytes");
    size_t bytes = 0;
    cr_assert_eq(tg_text_vocab_decode(vocab, emoji, 1, text, 5, &bytes), TG_OK, "%s",
                 tg_last_error());
    cr_assert_eq(bytes, 4);
    cr_assert_str_eq(text, "\xf0\x9f\x98\x80");
    cr_assert_eq(tg_text_vocab_decode(vocab, emoji, 0, text, 0, NULL), TG_ERR_INVALID);
    tg_text_corpus_free(corpus);
}

Test(text_corpus, vocab_rebuilds_from_exported_code_points) {
    tg_text_corpus *corpus = load_fixture("text/utf8.txt");
    const tg_text_vocab *original = tg_text_corpus_vocab(corpus);
    int size = tg_text_vocab_size(original);
    uint32_t saved[16];
    memcpy(saved, tg_text_vocab_code_points(original), (size_t)size * sizeof *saved);

    tg_text_vocab *rebuilt = NULL;
    tg_status status = tg_text_vocab_from_code_points(saved, size, &rebuilt);
    cr_assert_eq(status, TG_OK, "%s", tg_last_error());
    cr_assert_eq(tg_text_vocab_size(rebuilt), size);
    for (uint32_t c = 0; c < 0x20000; c++) {
        cr_assert_eq(tg_text_vocab_id(rebuilt, c), tg_text_vocab_id(original, c),
                     "U+%04X: id %d after rebuilding, %d before", c, tg_text_vocab_id(rebuilt, c),
                     tg_text_vocab_id(original, c));
    }
    const char *prompt = "caf\xc3\xa9 \xf0\x9f\x98\x80";
    int32_t ids_original[16];
    int32_t ids_rebuilt[16];
    size_t n_original;
    size_t n_rebuilt;
    cr_assert_eq(tg_text_vocab_encode(original, prompt, strlen(prompt), ids_original, 16,
                                      &n_original), TG_OK);
    cr_assert_eq(tg_text_vocab_encode(rebuilt, prompt, strlen(prompt), ids_rebuilt, 16,
                                      &n_rebuilt), TG_OK);
    cr_assert_eq(n_rebuilt, n_original);
    cr_assert(memcmp(ids_original, ids_rebuilt, n_original * sizeof *ids_original) == 0,
              "ids differ after rebuilding");
    tg_text_vocab_free(rebuilt);
    tg_text_corpus_free(corpus);
}

Test(text_corpus, vocab_rejects_invalid_code_points) {
    tg_text_vocab *vocab = (tg_text_vocab *)1;
    uint32_t unsorted[3] = {0x61, 0x63, 0x62};
    cr_assert_eq(tg_text_vocab_from_code_points(unsorted, 3, &vocab), TG_ERR_INVALID);
    cr_assert_null(vocab);
    expect_message_contains("code point 2 is U+0062 but code point 1 is U+0063");

    uint32_t duplicate[2] = {0x61, 0x61};
    cr_assert_eq(tg_text_vocab_from_code_points(duplicate, 2, &vocab), TG_ERR_INVALID);
    expect_message_contains("strictly increasing");

    uint32_t surrogate[2] = {0x61, 0xD800};
    cr_assert_eq(tg_text_vocab_from_code_points(surrogate, 2, &vocab), TG_ERR_INVALID);
    expect_message_contains("code point 1 is 0xD800");

    uint32_t too_large[1] = {0x110000};
    cr_assert_eq(tg_text_vocab_from_code_points(too_large, 1, &vocab), TG_ERR_INVALID);
    expect_message_contains("0x110000");

    cr_assert_eq(tg_text_vocab_from_code_points(unsorted, 0, &vocab), TG_ERR_INVALID);
    expect_message_contains("invalid size 0");
}

/* ---- Loading errors ------------------------------------------------------ */

Test(text_corpus, missing_file_names_path) {
    tg_text_corpus *corpus = (tg_text_corpus *)1;
    tg_status status = tg_text_corpus_load("/nonexistent/input.txt", &corpus);
    cr_assert_eq(status, TG_ERR_IO, "status %d", status);
    cr_assert_null(corpus);
    expect_message_contains("'/nonexistent/input.txt'");
    expect_message_contains("No such file or directory");
}

Test(text_corpus, empty_file_names_path_and_size) {
    char path[512];
    data_path(path, sizeof path, "text/empty.txt");
    tg_text_corpus *corpus = (tg_text_corpus *)1;
    tg_status status = tg_text_corpus_load(path, &corpus);
    cr_assert_eq(status, TG_ERR_FORMAT, "status %d", status);
    cr_assert_null(corpus);
    expect_message_contains(path);
    expect_message_contains("empty (0 bytes)");
}

Test(text_corpus, latin1_file_names_offset_and_byte) {
    char path[512];
    data_path(path, sizeof path, "text/latin1.txt");
    tg_text_corpus *corpus = NULL;
    tg_status status = tg_text_corpus_load(path, &corpus);
    cr_assert_eq(status, TG_ERR_FORMAT, "status %d", status);
    cr_assert_null(corpus);
    expect_message_contains(path);
    expect_message_contains("invalid UTF-8 at byte offset 12 (byte 0xe9");
    expect_message_contains("convert the file to UTF-8");
}

/* One broken byte sequence, where the error must point, and a word of the
 * reason. */
typedef struct bad_utf8_case {
    const char *bytes;
    size_t size;
    size_t offset;
    const char *byte;
    const char *reason;
} bad_utf8_case;

static const bad_utf8_case bad_utf8_cases[] = {
    {"ab\x80", 3, 2, "0x80", "no lead byte"},
    {"a\xc0\xafz", 4, 1, "0xc0", "overlong"},
    {"a\xc1\xbf", 3, 1, "0xc1", "overlong"},
    {"abc\xe0\x80\x80", 6, 3, "0xe0", "overlong encoding"},
    {"\xf0\x80\x80\x80", 4, 0, "0xf0", "overlong encoding"},
    {"x\xed\xa0\x80", 4, 1, "0xed", "surrogate"},
    {"\xf4\x90\x80\x80", 4, 0, "0xf4", "above U+10FFFF"},
    {"\xf5\x80\x80\x80", 4, 0, "0xf5", "never occurs"},
    {"ok\xff", 3, 2, "0xff", "never occurs"},
    {"\xc3(", 2, 0, "0xc3", "byte 0x28 at +1 is not a continuation"},
    {"\xe2\x82(", 3, 0, "0xe2", "byte 0x28 at +2 is not a continuation"},
    {"\xf0\x9f\x98", 3, 0, "0xf0", "end of the data cuts off"},
    {"abc\xe2\x82", 5, 3, "0xe2", "end of the data cuts off"},
    {"nul\0ok\xc3", 7, 6, "0xc3", "end of the data cuts off"},
};

Test(text_corpus, invalid_utf8_names_offset_and_byte) {
    for (size_t c = 0; c < sizeof bad_utf8_cases / sizeof bad_utf8_cases[0]; c++) {
        const bad_utf8_case *bad = &bad_utf8_cases[c];
        tg_text_corpus *corpus = NULL;
        tg_status status = tg_text_corpus_from_buffer(bad->bytes, bad->size, "broken.txt",
                                                      &corpus);
        cr_assert_eq(status, TG_ERR_FORMAT, "case %zu: status %d", c, status);
        cr_assert_null(corpus, "case %zu", c);
        char expected[64];
        snprintf(expected, sizeof expected, "byte offset %zu (byte %s ", bad->offset, bad->byte);
        const char *message = tg_last_error();
        cr_assert(strstr(message, expected) != NULL, "case %zu: expected \"%s\" in: %s", c,
                  expected, message);
        cr_assert(strstr(message, bad->reason) != NULL, "case %zu: expected \"%s\" in: %s", c,
                  bad->reason, message);
        cr_assert(strstr(message, "'broken.txt'") != NULL, "case %zu: %s", c, message);
    }
}

Test(text_corpus, boundary_code_points_are_accepted) {
    /* U+007F, U+0080, U+07FF, U+0800, U+D7FF, U+E000, U+FFFF, U+10000 and
     * U+10FFFF: the edges of every length and of the surrogate gap. */
    const char text[] = "\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf"
                        "\xf0\x90\x80\x80\xf4\x8f\xbf\xbf";
    tg_text_corpus *corpus = NULL;
    tg_status status = tg_text_corpus_from_buffer(text, sizeof text - 1, "edges", &corpus);
    cr_assert_eq(status, TG_OK, "%s", tg_last_error());
    const uint32_t expected[] = {0x7F,   0x80,   0x7FF,   0x800,   0xD7FF,
                                 0xE000, 0xFFFF, 0x10000, 0x10FFFF};
    const tg_text_vocab *vocab = tg_text_corpus_vocab(corpus);
    cr_assert_eq(tg_text_vocab_size(vocab), 9);
    for (int i = 0; i < 9; i++) {
        cr_assert_eq(tg_text_vocab_code_points(vocab)[i], expected[i],
                     "code point %d is U+%04X, expected U+%04X", i,
                     tg_text_vocab_code_points(vocab)[i], expected[i]);
        cr_assert_eq(tg_text_corpus_tokens(corpus)[i], i, "token %d", i);
    }
    tg_text_corpus_free(corpus);
}

/* ---- Split --------------------------------------------------------------- */

Test(text_corpus, split_takes_floor_of_fraction) {
    char text[101];
    for (int i = 0; i < 100; i++) {
        text[i] = (char)('a' + i % 26);
    }
    text[100] = '\0';
    tg_text_corpus *corpus = corpus_from_string(text);
    tg_text_split train;
    tg_text_split val;
    cr_assert_eq(tg_text_corpus_split(corpus, TG_TEXT_TRAIN_FRACTION, 8, &train, &val), TG_OK,
                 "%s", tg_last_error());
    cr_assert_eq(train.size, 90, "train size %zu", train.size);
    cr_assert_eq(val.size, 10, "val size %zu", val.size);
    cr_assert_eq(train.tokens, tg_text_corpus_tokens(corpus));
    cr_assert_eq(val.tokens, tg_text_corpus_tokens(corpus) + 90);

    cr_assert_eq(tg_text_corpus_split(corpus, 0.337, 8, &train, &val), TG_OK);
    cr_assert_eq(train.size, 33, "train size %zu for 0.337 * 100", train.size);
    cr_assert_eq(val.size, 67, "val size %zu", val.size);
    tg_text_corpus_free(corpus);
}

Test(text_corpus, split_matches_python_int_of_product) {
    /* Python: int(0.9 * 1115394) == 1003854 for tiny Shakespeare's length, and
     * int(0.9 * 1000003) == 900002. */
    const size_t lengths[2] = {1115394, 1000003};
    const size_t expected_train[2] = {1003854, 900002};
    for (int k = 0; k < 2; k++) {
        char *text = malloc(lengths[k]);
        for (size_t i = 0; i < lengths[k]; i++) {
            text[i] = (char)('a' + i % 3);
        }
        tg_text_corpus *corpus = NULL;
        cr_assert_eq(tg_text_corpus_from_buffer(text, lengths[k], "long", &corpus), TG_OK);
        tg_text_split train;
        tg_text_split val;
        cr_assert_eq(tg_text_corpus_split(corpus, 0.9, 256, &train, &val), TG_OK, "%s",
                     tg_last_error());
        cr_assert_eq(train.size, expected_train[k], "N = %zu: train %zu, expected %zu",
                     lengths[k], train.size, expected_train[k]);
        cr_assert_eq(val.size, lengths[k] - expected_train[k]);
        free(text);
        tg_text_corpus_free(corpus);
    }
}

Test(text_corpus, split_rejects_bad_fraction) {
    tg_text_corpus *corpus = load_fixture("text/tiny.txt");
    tg_text_split train;
    tg_text_split val;
    const double bad[] = {0.0, 1.0, -0.5, 1.5, NAN, INFINITY};
    for (int i = 0; i < 6; i++) {
        tg_status status = tg_text_corpus_split(corpus, bad[i], 4, &train, &val);
        cr_assert_eq(status, TG_ERR_INVALID, "fraction %g: status %d", bad[i], status);
        expect_message_contains("invalid train fraction");
    }
    cr_assert_eq(tg_text_corpus_split(corpus, 0.5, 0, &train, &val), TG_ERR_INVALID);
    expect_message_contains("invalid block size 0");
    tg_text_corpus_free(corpus);
}

Test(text_corpus, short_corpus_names_path_and_sizes) {
    tg_text_corpus *corpus = load_fixture("text/tiny.txt");
    size_t n = tg_text_corpus_size(corpus);
    tg_text_split train;
    tg_text_split val;
    /* 145 tokens: 130 train and 15 validate, so block 14 fits and 15 does not. */
    cr_assert_eq(n, 145, "fixture has %zu tokens", n);
    cr_assert_eq(tg_text_corpus_split(corpus, 0.9, 14, &train, &val), TG_OK, "%s",
                 tg_last_error());
    cr_assert_eq(val.size, 15);
    tg_status status = tg_text_corpus_split(corpus, 0.9, 15, &train, &val);
    cr_assert_eq(status, TG_ERR_INVALID, "status %d", status);
    expect_message_contains("tiny.txt");
    expect_message_contains("145 tokens");
    expect_message_contains("130 train and 15 validation");
    expect_message_contains("block size 15 needs at least 16");

    /* The train side can be the short one too. */
    status = tg_text_corpus_split(corpus, 0.05, 8, &train, &val);
    cr_assert_eq(status, TG_ERR_INVALID, "status %d", status);
    expect_message_contains("7 train and 138 validation");
    tg_text_corpus_free(corpus);
}

/* ---- Sampler ------------------------------------------------------------- */

Test(text_corpus, windows_are_shifted_targets) {
    tg_text_corpus *corpus = load_fixture("text/tiny.txt");
    tg_text_split train;
    tg_text_split val;
    cr_assert_eq(tg_text_corpus_split(corpus, 0.9, 8, &train, &val), TG_OK);
    tg_text_sampler sampler;
    tg_text_sampler_init(&sampler, 5);
    enum { B = 6, T = 8 };
    int32_t x[B * T];
    int32_t y[B * T];
    for (int step = 0; step < 50; step++) {
        cr_assert_eq(tg_text_sampler_next(&sampler, &val, B, T, x, y), TG_OK, "%s",
                     tg_last_error());
        for (int b = 0; b < B; b++) {
            /* Find the window in the split: the first start whose tokens match. */
            bool found = false;
            for (size_t start = 0; start + T < val.size && !found; start++) {
                found = memcmp(val.tokens + start, x + b * T, T * sizeof *x) == 0 &&
                        memcmp(val.tokens + start + 1, y + b * T, T * sizeof *y) == 0;
            }
            cr_assert(found, "step %d row %d is not a window of the split with its shift", step,
                      b);
        }
    }
    cr_assert_eq(sampler.batches, 50, "batches %llu", (unsigned long long)sampler.batches);
    tg_text_corpus_free(corpus);
}

Test(text_corpus, every_start_including_last_is_drawn) {
    /* 12 distinct characters in order, so token id == position and x[b][0]
     * is the start. With T = 4 the starts are 0..7 and 7 is the last. */
    tg_text_corpus *corpus = corpus_from_string("abcdefghijkl");
    tg_text_split all = {tg_text_corpus_tokens(corpus), tg_text_corpus_size(corpus)};
    enum { B = 4, T = 4 };
    int32_t x[B * T];
    int32_t y[B * T];
    int seen[12] = {0};
    tg_text_sampler sampler;
    tg_text_sampler_init(&sampler, 123);
    for (int step = 0; step < 200; step++) {
        cr_assert_eq(tg_text_sampler_next(&sampler, &all, B, T, x, y), TG_OK);
        for (int b = 0; b < B; b++) {
            int start = x[b * T];
            cr_assert(start >= 0 && start <= 7, "start %d outside [0, 8)", start);
            for (int t = 0; t < T; t++) {
                cr_assert_eq(x[b * T + t], start + t, "x[%d][%d] = %d", b, t, x[b * T + t]);
                cr_assert_eq(y[b * T + t], start + t + 1, "y[%d][%d] = %d", b, t, y[b * T + t]);
            }
            seen[start]++;
        }
    }
    for (int start = 0; start <= 7; start++) {
        cr_assert_gt(seen[start], 0, "start %d was never drawn in 800 windows", start);
    }
    /* 800 draws over 8 starts: each count is about 100 +- 9.4; 50 is over 5 sigma. */
    for (int start = 0; start <= 7; start++) {
        cr_assert(seen[start] > 50 && seen[start] < 150, "start %d drawn %d times of 800", start,
                  seen[start]);
    }
    tg_text_corpus_free(corpus);
}

Test(text_corpus, smallest_split_has_one_window) {
    tg_text_corpus *corpus = corpus_from_string("abcde");
    tg_text_split all = {tg_text_corpus_tokens(corpus), tg_text_corpus_size(corpus)};
    int32_t x[4];
    int32_t y[4];
    tg_text_sampler sampler;
    tg_text_sampler_init(&sampler, 1);
    cr_assert_eq(tg_text_sampler_next(&sampler, &all, 1, 4, x, y), TG_OK, "%s", tg_last_error());
    cr_assert_eq(x[0], 0);
    cr_assert_eq(y[3], 4);
    tg_text_sampler saved = sampler;
    cr_assert_eq(tg_text_sampler_next(&sampler, &all, 1, 5, x, y), TG_ERR_INVALID);
    expect_message_contains("5 tokens");
    expect_message_contains("at least 6");
    cr_assert(memcmp(&saved, &sampler, sizeof saved) == 0, "a failed call changed the sampler");
    cr_assert_eq(tg_text_sampler_next(&sampler, &all, 0, 4, x, y), TG_ERR_INVALID);
    expect_message_contains("invalid batch size 0");
    tg_text_corpus_free(corpus);
}

Test(text_corpus, restored_sampler_repeats_batches) {
    tg_text_corpus *corpus = load_fixture("text/tiny.txt");
    tg_text_split train;
    tg_text_split val;
    cr_assert_eq(tg_text_corpus_split(corpus, 0.9, 8, &train, &val), TG_OK);
    enum { B = 3, T = 8, STEPS = 7 };
    tg_text_sampler sampler;
    tg_text_sampler_init(&sampler, 2024);
    int32_t x[B * T];
    int32_t y[B * T];
    for (int step = 0; step < 5; step++) {
        cr_assert_eq(tg_text_sampler_next(&sampler, &train, B, T, x, y), TG_OK);
    }

    /* Save as a checkpoint would: the bytes of the struct. */
    unsigned char saved[sizeof(tg_text_sampler)];
    memcpy(saved, &sampler, sizeof saved);
    int32_t first_x[STEPS][B * T];
    int32_t first_y[STEPS][B * T];
    for (int step = 0; step < STEPS; step++) {
        cr_assert_eq(tg_text_sampler_next(&sampler, &train, B, T, first_x[step], first_y[step]),
                     TG_OK);
    }

    tg_text_sampler restored;
    tg_text_sampler_init(&restored, 999);
    memcpy(&restored, saved, sizeof saved);
    cr_assert_eq(restored.batches, 5, "restored batches %llu",
                 (unsigned long long)restored.batches);
    for (int step = 0; step < STEPS; step++) {
        cr_assert_eq(tg_text_sampler_next(&restored, &train, B, T, x, y), TG_OK);
        cr_assert(memcmp(x, first_x[step], sizeof x) == 0, "x differs at step %d", step);
        cr_assert(memcmp(y, first_y[step], sizeof y) == 0, "y differs at step %d", step);
    }
    cr_assert_eq(restored.batches, 12);

    /* A different seed gives different windows. */
    tg_text_sampler other;
    tg_text_sampler_init(&other, 2025);
    cr_assert_eq(tg_text_sampler_next(&other, &train, B, T, x, y), TG_OK);
    tg_text_sampler fresh;
    tg_text_sampler_init(&fresh, 2024);
    int32_t fresh_x[B * T];
    int32_t fresh_y[B * T];
    cr_assert_eq(tg_text_sampler_next(&fresh, &train, B, T, fresh_x, fresh_y), TG_OK);
    cr_assert(memcmp(x, fresh_x, sizeof x) != 0, "seeds 2024 and 2025 gave the same batch");
    tg_text_corpus_free(corpus);
}
