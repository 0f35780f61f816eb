/* Training or evaluation mode, passed to the forward of layers with dropout.
 *
 * In training mode dropout draws its masks from `rng`; in evaluation mode (or
 * when the mode pointer is NULL) dropout is the identity and draws nothing.
 */
#ifndef TG_LAYERS_MODE_H
#define TG_LAYERS_MODE_H

#include <stdbool.h>

#include "../autograd/rng.h"

typedef struct tg_mode {
    bool training;
    tg_rng *rng;  /* dropout masks; may be NULL when no layer has dropout */
} tg_mode;

#endif
