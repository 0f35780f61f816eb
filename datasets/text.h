/* Character-level text corpora for language models.
 *
 * A corpus is a UTF-8 text file read whole. Its vocabulary is the sorted set
 * of the Unicode code points that occur in the file: token id i stands for the
 * i-th smallest code point. For ASCII text this is byte order, the same as
 * Python's sorted(set(text)), so tiny Shakespeare gives nanoGPT's 65
 * characters with the same ids. The whole file is encoded once into int32
 * token ids, one per code point.
 *
 *     tg_text_corpus *corpus;
 *     tg_text_split train, val;
 *     tg_text_sampler sampler;
 *     tg_text_corpus_load("data/input.txt", &corpus);
 *     tg_text_corpus_split(corpus, TG_TEXT_TRAIN_FRACTION, T, &train, &val);
 *     tg_text_sampler_init(&sampler, seed);
 *     tg_text_sampler_next(&sampler, &train, B, T, x, y);   // x, y (B, T)
 *
 * Letters: B batch size, T block size (context length), V vocabulary size,
 * N tokens in the corpus. Every function that can fail returns a tg_status and
 * leaves a message in tg_last_error().
 */
#ifndef TG_DATASETS_TEXT_H
#define TG_DATASETS_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "../autograd/rng.h"
#include "../autograd/status.h"

/* Largest number of bytes one code point takes in UTF-8. */
#define TG_UTF8_MAX_BYTES 4

/* Fraction of the tokens that goes to the training split by default; the rest
 * validate. nanoGPT's char-level Shakespeare split uses the same. */
#define TG_TEXT_TRAIN_FRACTION 0.9

/* ---- Vocabulary ---------------------------------------------------------- */

/* A vocabulary: V distinct code points in increasing order. Opaque. */
typedef struct tg_text_vocab tg_text_vocab;

/* Builds a vocabulary from `size` code points, for instance the array a
 * checkpoint stored from tg_text_vocab_code_points. The code points must be
 * strictly increasing Unicode scalar values (at most U+10FFFF, no UTF-16
 * surrogates U+D800-U+DFFF), so the ids they get are the ids they had.
 * On success *vocab is a new vocabulary that the caller frees with
 * tg_text_vocab_free. Returns TG_ERR_INVALID naming the offending index and
 * value, or TG_ERR_NOMEM. */
tg_status tg_text_vocab_from_code_points(const uint32_t *code_points, int size,
                                         tg_text_vocab **vocab);

/* Frees a vocabulary. Accepts NULL. */
void tg_text_vocab_free(tg_text_vocab *vocab);

/* Returns V, the number of code points. */
int tg_text_vocab_size(const tg_text_vocab *vocab);

/* Returns the V code points in id order; element i is the code point of token
 * id i. Store these to rebuild the vocabulary with
 * tg_text_vocab_from_code_points. The array belongs to the vocabulary. */
const uint32_t *tg_text_vocab_code_points(const tg_text_vocab *vocab);

/* Returns the token id of a code point, or -1 if it is not in the vocabulary. */
int32_t tg_text_vocab_id(const tg_text_vocab *vocab, uint32_t code_point);

/* Encodes `text_bytes` bytes of UTF-8 text (a prompt, say) into token ids.
 * Writes one id per code point to ids, which has room for max_ids, and stores
 * the count in *n_ids. A text of k bytes never needs more than k ids.
 * Returns TG_ERR_FORMAT for invalid UTF-8 (naming the byte offset and the
 * byte), TG_ERR_INVALID for a character that is not in the vocabulary (naming
 * it and its position) or for too small an ids buffer. */
tg_status tg_text_vocab_encode(const tg_text_vocab *vocab, const char *text, size_t text_bytes,
                               int32_t *ids, size_t max_ids, size_t *n_ids);

/* Decodes n_ids token ids into UTF-8 text with a terminating NUL. `text` has
 * room for text_capacity bytes; n_ids * TG_UTF8_MAX_BYTES + 1 always suffices.
 * Stores the byte count without the NUL in *text_bytes (which may be NULL).
 * Returns TG_ERR_INVALID for an id outside [0, V) or too small a buffer. */
tg_status tg_text_vocab_decode(const tg_text_vocab *vocab, const int32_t *ids, size_t n_ids,
                               char *text, size_t text_capacity, size_t *text_bytes);

/* ---- Corpus -------------------------------------------------------------- */

/* A text file encoded with its own vocabulary. Opaque. */
typedef struct tg_text_corpus tg_text_corpus;

/* Reads the text file at `path`, builds its vocabulary and encodes it.
 * On success *corpus is a new corpus that the caller frees with
 * tg_text_corpus_free. Returns TG_ERR_IO if the file cannot be opened or read,
 * TG_ERR_FORMAT if it is empty or not valid UTF-8 (naming the byte offset and
 * the byte), or TG_ERR_NOMEM. Every message names the path. */
tg_status tg_text_corpus_load(const char *path, tg_text_corpus **corpus);

/* As tg_text_corpus_load, from `text_bytes` bytes in memory; `name` stands for
 * the path in messages. The corpus keeps no reference to `text`. */
tg_status tg_text_corpus_from_buffer(const char *text, size_t text_bytes, const char *name,
                                     tg_text_corpus **corpus);

/* Frees a corpus and its vocabulary. Accepts NULL. */
void tg_text_corpus_free(tg_text_corpus *corpus);

/* Returns the corpus's vocabulary, which lives as long as the corpus. */
const tg_text_vocab *tg_text_corpus_vocab(const tg_text_corpus *corpus);

/* Returns the N token ids of the whole file, owned by the corpus. */
const int32_t *tg_text_corpus_tokens(const tg_text_corpus *corpus);

/* Returns N, the number of tokens (code points) in the file. */
size_t tg_text_corpus_size(const tg_text_corpus *corpus);

/* Returns the path (or name) the corpus was loaded from. */
const char *tg_text_corpus_path(const tg_text_corpus *corpus);

/* A contiguous run of a corpus's tokens. It points into the corpus and is
 * valid while the corpus lives. */
typedef struct tg_text_split {
    const int32_t *tokens;  /* (size) token ids */
    size_t size;
} tg_text_split;

/* Splits the corpus: the first floor(train_fraction * N) tokens train, the
 * rest validate, as nanoGPT's n = int(0.9 * len(data)). train_fraction must lie
 * in (0, 1), and each split must contain at least block_size + 1 tokens so that
 * one full (x, y) window fits. Returns TG_ERR_INVALID naming the path and the
 * sizes otherwise. */
tg_status tg_text_corpus_split(const tg_text_corpus *corpus, double train_fraction,
                               int block_size, tg_text_split *train, tg_text_split *val);

/* ---- Batches ------------------------------------------------------------- */

/* The whole state of a batch sampler. It contains no pointers, so copying the
 * struct saves it and copying it back restores it exactly: the batches drawn
 * after a restore are bitwise the ones drawn after the save. */
typedef struct tg_text_sampler {
    tg_rng rng;        /* draws the window start offsets */
    uint64_t batches;  /* batches drawn so far */
} tg_text_sampler;

/* Starts a sampler whose generator is seeded with `seed`. */
void tg_text_sampler_init(tg_text_sampler *sampler, uint64_t seed);

/* Draws one batch of B = batch_size windows of the split. Window b starts at
 * an offset i_b drawn uniformly from [0, size - T) with tg_rng_below, in order
 * b = 0, 1, ..., and gives x[b] = tokens[i_b .. i_b + T) and
 * y[b] = tokens[i_b + 1 .. i_b + T + 1), the next-token targets. Every window
 * is full length, and the last start, size - T - 1, can be drawn.
 * x (B, T) and y (B, T) are caller buffers of B * T int32 each.
 * Returns TG_ERR_INVALID for batch_size or block_size below 1 or a split of
 * fewer than T + 1 tokens, in which case the sampler is unchanged. */
tg_status tg_text_sampler_next(tg_text_sampler *sampler, const tg_text_split *split,
                               int batch_size, int block_size, int32_t *x, int32_t *y);

#endif
