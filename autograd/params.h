/* Named parameter lists: how layers expose their trainable tensors.
 *
 * Every layer offers `tg_<layer>_params(layer, prefix, list)`, which appends
 * its parameters under PyTorch-style dotted names ("blocks.0.attn.qkv.weight")
 * with a kind that tells optimizers how to treat them (no weight decay on
 * biases, norms and embeddings by default). Optimizers and checkpoints work
 * from such a list. The list refers to the tensors and does not own them.
 */
#ifndef TG_AUTOGRAD_PARAMS_H
#define TG_AUTOGRAD_PARAMS_H

#include <stddef.h>

#include "tensor.h"

/* Longest parameter name, including the terminating NUL. */
#define TG_PARAM_NAME_MAX 128

typedef enum tg_param_kind {
    TG_PARAM_WEIGHT,     /* a matrix of a linear map or projection */
    TG_PARAM_BIAS,       /* an additive bias */
    TG_PARAM_NORM,       /* a normalisation gain or shift (LayerNorm) */
    TG_PARAM_EMBEDDING,  /* a lookup table (token or learned position embedding) */
} tg_param_kind;

typedef struct tg_named_param {
    char name[TG_PARAM_NAME_MAX];
    tg_param_kind kind;
    tg_tensor *tensor;
} tg_named_param;

typedef struct tg_param_list {
    tg_named_param *items;
    int count;
    int capacity;
} tg_param_list;

/* Initialises an empty list. */
void tg_param_list_init(tg_param_list *list);

/* Frees the list's storage; the tensors are not touched. */
void tg_param_list_free(tg_param_list *list);

/* Appends `tensor` as "<prefix>.<name>", or "<name>" if prefix is NULL or "".
 * Returns TG_ERR_INVALID if the full name is too long or already in the list,
 * or TG_ERR_NOMEM. */
tg_status tg_param_list_add(tg_param_list *list, const char *prefix, const char *name,
                            tg_param_kind kind, tg_tensor *tensor);

/* Returns the tensor with this full name, or NULL. */
tg_tensor *tg_param_list_find(const tg_param_list *list, const char *name);

/* Returns the total number of elements of all parameters. */
size_t tg_param_list_numel(const tg_param_list *list);

/* Sets the gradient of every parameter to zero. */
void tg_param_list_zero_grad(const tg_param_list *list);

/* Writes "<prefix>.<name>" (or "<name>") into buf; returns TG_ERR_INVALID if it
 * does not fit. Layers use it to build the prefixes of their sublayers. */
tg_status tg_param_name_join(char *buf, size_t buf_size, const char *prefix, const char *name);

/* Returns "weight", "bias", "norm" or "embedding". */
const char *tg_param_kind_name(tg_param_kind kind);

#endif
