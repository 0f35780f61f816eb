/* Positional encodings: sinusoidal or learned, added to the token embedding or
 * concatenated to it, over 1-D sequences or 2-D grids of image patches.
 *
 * Sinusoidal, frequencies w_i = 10000^(-2i / D) for i = 0 .. D/2 - 1:
 * - interleaved layout: PE[p, 2i] = sin(p w_i), PE[p, 2i+1] = cos(p w_i)
 *   (the original Transformer's, and nanoGPT-style sinusoidal tables);
 * - halves layout: PE[p, i] = sin(p w_i), PE[p, D/2 + i] = cos(p w_i)
 *   (common in diffusion models for timesteps).
 * A 2-D grid of rows x cols patches, in row-major patch order, encodes the row
 * in the first D/2 channels and the column in the last D/2, each with the 1-D
 * encoding of width D/2.
 *
 * Combining: ADD gives x (B, T, C) + PE[:T] with D = C; CONCAT gives
 * (B, T, C + D), the model width growing by the encoding width.
 * A learned table is the parameter "weight" (max_len, D), kind
 * TG_PARAM_EMBEDDING, drawn from N(0, init_std^2); a sinusoidal table is a
 * fixed buffer and no parameter.
 */
#ifndef TG_LAYERS_POSITIONAL_H
#define TG_LAYERS_POSITIONAL_H

#include "../autograd/params.h"
#include "../autograd/tape.h"

typedef enum tg_sinusoid_layout { TG_SINUSOID_INTERLEAVED, TG_SINUSOID_HALVES } tg_sinusoid_layout;
typedef enum tg_pos_kind { TG_POS_SINUSOIDAL, TG_POS_LEARNED } tg_pos_kind;
typedef enum tg_pos_combine { TG_POS_ADD, TG_POS_CONCAT } tg_pos_combine;

/* Writes the (n, dim) sinusoidal encoding of n positions, computed in double.
 * Returns TG_ERR_INVALID if dim is not a positive even number. */
tg_status tg_sinusoid_encode(tg_scalar *out, const double *positions, int n, int dim,
                             tg_sinusoid_layout layout);

/* Writes the (rows * cols, dim) encoding of a grid; dim must be a multiple of 4. */
tg_status tg_sinusoid_encode_2d(tg_scalar *out, int rows, int cols, int dim,
                                tg_sinusoid_layout layout);

typedef struct tg_pos_encoding_config {
    tg_pos_kind kind;
    tg_pos_combine combine;
    tg_sinusoid_layout layout;  /* sinusoidal only */
    int max_len;                /* positions of a 1-D sequence; ignored for a grid */
    int grid_rows;              /* > 0 with grid_cols for a 2-D grid */
    int grid_cols;
    int dim;                    /* D */
    double init_std;            /* learned only */
} tg_pos_encoding_config;

typedef struct tg_pos_encoding {
    tg_pos_encoding_config config;
    int n_positions;   /* max_len, or grid_rows * grid_cols */
    tg_tensor *table;  /* (n_positions, D); requires grad when learned */
} tg_pos_encoding;

tg_status tg_pos_encoding_init(tg_pos_encoding *pe, const tg_pos_encoding_config *config,
                               tg_rng *rng);

/* x (B, T, C) gives (B, T, C) for ADD (C == D) or (B, T, C + D) for CONCAT.
 * T may be at most n_positions. */
tg_tensor *tg_pos_encoding_forward(tg_tape *tape, const tg_pos_encoding *pe, const tg_tensor *x);

/* Appends "<prefix>.weight" for a learned table; nothing for a sinusoidal one. */
tg_status tg_pos_encoding_params(const tg_pos_encoding *pe, const char *prefix,
                                 tg_param_list *list);

void tg_pos_encoding_free(tg_pos_encoding *pe);

#endif
