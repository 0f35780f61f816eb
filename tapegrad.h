/* tapegrad: a training framework with tape-based reverse-mode autodiff.
 *
 * One include gives the whole public API. A training step:
 *
 *     tg_tape *tape = tg_tape_new();
 *     int shape[2] = {4, 3};
 *     tg_tensor *w = tg_tensor_normal(2, shape, &rng, 0.0, 0.02);
 *     tg_tensor_set_requires_grad(w, true);          // a parameter
 *
 *     for (int step = 0; step < steps; step++) {
 *         tg_tensor *y = tg_matmul(tape, x, w);      // ops record as they run
 *         tg_tensor *loss = ...;                     // a one-element tensor
 *         if (tg_tape_backward(tape, loss) != TG_OK) // w->grad += dloss/dw
 *             fprintf(stderr, "%s\n", tg_last_error());
 *         ...                                        // optimizer step, zero grads
 *         tg_tape_reset(tape);                       // step memory released
 *     }
 *
 * Tensors are row-major with shapes written outermost first, x (B, T, C).
 * Letters used in shape comments: B batch, T sequence length, C channels or
 * model width, H heads, D head size (C / H), V vocabulary, N flattened rows.
 */
#ifndef TAPEGRAD_H
#define TAPEGRAD_H

#include "autograd/gradcheck.h"
#include "autograd/op.h"
#include "autograd/params.h"
#include "autograd/rng.h"
#include "autograd/scalar.h"
#include "autograd/status.h"
#include "autograd/tape.h"
#include "autograd/tensor.h"

#include "autograd/ops/attention.h"
#include "autograd/ops/dropout.h"
#include "autograd/ops/elementwise.h"
#include "autograd/ops/embedding.h"
#include "autograd/ops/gelu_mlp.h"
#include "autograd/ops/layernorm.h"
#include "autograd/ops/linear.h"
#include "autograd/ops/loss.h"
#include "autograd/ops/matmul.h"
#include "autograd/ops/reduce.h"
#include "autograd/ops/shape.h"
#include "autograd/ops/softmax.h"
#include "autograd/ops/unary.h"

#include "layers/attention.h"
#include "layers/block.h"
#include "layers/embedding.h"
#include "layers/layernorm.h"
#include "layers/linear.h"
#include "layers/mlp.h"
#include "layers/mode.h"
#include "layers/positional.h"
#include "layers/timestep.h"

#include "optim/adam.h"
#include "optim/clip.h"
#include "optim/optimizer.h"
#include "optim/param_groups.h"
#include "optim/schedule.h"
#include "optim/sgd.h"

#include "datasets/epoch_sampler.h"
#include "datasets/idx.h"
#include "datasets/synthetic.h"
#include "datasets/text.h"

#include "checkpoint/checkpoint.h"

#endif
