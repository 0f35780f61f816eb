/* The scalar type of every tensor element.
 *
 * The library is built twice from the same sources: `tapegrad` with float32
 * elements (training), and `tapegrad_f64` with TG_SCALAR_DOUBLE defined, where
 * every tensor holds doubles. The double build exists for gradient checking:
 * central differences in double precision resolve relative errors far below
 * 1e-6, which float32 cannot. Kernels write `tg_scalar` and include <tgmath.h>,
 * so exp(x), sqrt(x) and friends pick the float or double routine by type.
 */
#ifndef TG_AUTOGRAD_SCALAR_H
#define TG_AUTOGRAD_SCALAR_H

#ifdef TG_SCALAR_DOUBLE
typedef double tg_scalar;
#define TG_SCALAR_NAME "float64"
#else
typedef float tg_scalar;
#define TG_SCALAR_NAME "float32"
#endif

/* Maximum number of dimensions of a tensor. */
#define TG_MAX_DIMS 6

#endif
