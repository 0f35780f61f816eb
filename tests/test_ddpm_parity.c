#define _POSIX_C_SOURCE 200809L
/* The DDPM denoisers against PyTorch: on the same weights and batch, the
 * noise prediction, the loss and every parameter gradient match the
 * reference dump.
 *
 * The fixtures in tests/data/ddpm (see make_parity_dump.py there) hold a
 * two-block patch Transformer of width 16 and an MLP of width 8 on 3
 * Fashion-MNIST images, dumped by PyTorch 1.13. Tolerances: the loss within
 * 1e-5 relative of PyTorch's float64 loss; the prediction within 1e-5 of
 * PyTorch's float32 one; every gradient tensor within GRAD_TOLERANCE of the
 * float64 reference, as max |ours - ref| / max |ref| per tensor. Float32
 * rounding alone stays near 1e-6 here. */
#include <criterion/criterion.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "denoiser.h"
#include "diffusion.h"

#define GRAD_TOLERANCE 1e-5
#define BATCH 3
#define IMAGE_SIZE 28
#define PIXELS (IMAGE_SIZE * IMAGE_SIZE)

static const char *fixture_path(const char *name) {
    const char *dir = getenv("TAPEGRAD_TEST_DATA");
    cr_assert_not_null(dir, "TAPEGRAD_TEST_DATA is not set; run the test through ctest");
    static char path[1024];
    snprintf(path, sizeof path, "%s/ddpm/%s", dir, name);
    return path;
}

static size_t dataset_size(hid_t file, const char *name) {
    hid_t set = H5Dopen2(file, name, H5P_DEFAULT);
    cr_assert_geq(set, 0, "dataset %s is missing", name);
    hid_t space = H5Dget_space(set);
    hssize_t n = H5Sget_simple_extent_npoints(space);
    H5Sclose(space);
    H5Dclose(set);
    return (size_t)n;
}

static void read_dataset(hid_t file, const char *name, hid_t type, void *out, size_t expected) {
    cr_assert_eq(dataset_size(file, name), expected, "dataset %s has %zu values, expected %zu",
                 name, dataset_size(file, name), expected);
    hid_t set = H5Dopen2(file, name, H5P_DEFAULT);
    cr_assert_geq(H5Dread(set, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out), 0,
                  "cannot read %s", name);
    H5Dclose(set);
}

/* Maps one of our parameter names to the reference's. */
static void reference_name(const char *ours, char *ref, size_t size) {
    static const char *const pairs[][2] = {
        {"t_embed.fc1.", "t_embed.mlp.0."}, {"t_embed.fc2.", "t_embed.mlp.2."},
        {".ln_1.", ".ln1."},                {".ln_2.", ".ln2."},
        {".attn.c_attn.", ".attn.qkv."},    {".attn.c_proj.", ".attn.proj."},
        {".mlp.c_fc.", ".fc1."},            {".mlp.c_proj.", ".fc2."},
    };
    snprintf(ref, size, "%s", ours);
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        char *at = strstr(ref, pairs[i][0]);
        if (at != NULL) {
            char renamed[512];
            int head = (int)(at - ref);
            snprintf(renamed, sizeof renamed, "%.*s%s%s", head, ref, pairs[i][1],
                     at + strlen(pairs[i][0]));
            snprintf(ref, size, "%.255s", renamed);
        }
    }
}

static void check_parity(const char *fixture, const ddpm_model_config *config) {
    hid_t file = H5Fopen(fixture_path(fixture), H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert_geq(file, 0, "cannot open fixture %s", fixture);
    tg_rng rng;
    tg_rng_seed(&rng, 0);
    ddpm_model model;
    cr_assert_eq(ddpm_model_init(&model, config, &rng), TG_OK, "%s", tg_last_error());

    /* Load PyTorch's weights into our parameters, name by name. */
    for (int i = 0; i < model.params.count; i++) {
        tg_named_param *p = &model.params.items[i];
        char ref[256];
        char name[300];
        reference_name(p->name, ref, sizeof ref);
        snprintf(name, sizeof name, "weights/%s", ref);
        read_dataset(file, name, H5T_NATIVE_FLOAT, p->tensor->data, p->tensor->size);
    }
    float x_t[BATCH * PIXELS];
    float noise[BATCH * PIXELS];
    float eps_ref[BATCH * PIXELS];
    int32_t t[BATCH];
    double loss_ref;
    read_dataset(file, "x_t", H5T_NATIVE_FLOAT, x_t, BATCH * PIXELS);
    read_dataset(file, "noise", H5T_NATIVE_FLOAT, noise, BATCH * PIXELS);
    read_dataset(file, "eps_pred", H5T_NATIVE_FLOAT, eps_ref, BATCH * PIXELS);
    read_dataset(file, "t", H5T_NATIVE_INT32, t, BATCH);
    read_dataset(file, "loss_f64", H5T_NATIVE_DOUBLE, &loss_ref, 1);

    tg_tape *tape = tg_tape_new();
    tg_tensor *prediction = ddpm_model_forward(tape, &model, x_t, t, BATCH);
    cr_assert_not_null(prediction, "%s", tg_tape_error(tape));
    double expected[BATCH * PIXELS];
    for (int i = 0; i < BATCH * PIXELS; i++) {
        expected[i] = eps_ref[i];
    }
    expect_close("noise prediction", prediction->data, expected, BATCH * PIXELS, 1e-5, 0.0);
    tg_tape_reset(tape);

    tg_tensor *loss = ddpm_model_loss(tape, &model, x_t, t, noise, BATCH);
    cr_assert_not_null(loss, "%s", tg_tape_error(tape));
    cr_assert_eq(tg_tape_backward(tape, loss), TG_OK, "%s", tg_last_error());
    double loss_error = fabs((double)loss->data[0] - loss_ref) / fabs(loss_ref);
    cr_assert_leq(loss_error, 1e-5, "%s: loss %.8f, PyTorch %.8f", fixture,
                  (double)loss->data[0], loss_ref);

    for (int i = 0; i < model.params.count; i++) {
        tg_named_param *p = &model.params.items[i];
        char ref_name[256];
        char name[300];
        reference_name(p->name, ref_name, sizeof ref_name);
        snprintf(name, sizeof name, "grads_f64/%s", ref_name);
        double *ref = malloc(p->tensor->size * sizeof *ref);
        read_dataset(file, name, H5T_NATIVE_DOUBLE, ref, p->tensor->size);
        double max_diff = 0.0;
        double max_ref = 0.0;
        for (size_t j = 0; j < p->tensor->size; j++) {
            max_diff = fmax(max_diff, fabs((double)p->tensor->grad[j] - ref[j]));
            max_ref = fmax(max_ref, fabs(ref[j]));
        }
        cr_assert_gt(max_ref, 0.0, "%s: reference gradient of %s is all zero", fixture, p->name);
        cr_assert_leq(max_diff / max_ref, GRAD_TOLERANCE,
                      "%s: gradient of %s differs by %.3g relative", fixture, p->name,
                      max_diff / max_ref);
        free(ref);
    }
    tg_tape_free(tape);
    ddpm_model_free(&model);
    H5Fclose(file);
}

Test(ddpm_parity, patch_transformer_matches_pytorch) {
    ddpm_model_config config = {
        .arch = DDPM_ARCH_DIT,
        .data_dim = PIXELS,
        .image_size = IMAGE_SIZE,
        .patch = 4,
        .width = 16,
        .depth = 2,
        .heads = 2,
        .pos = TG_POS_SINUSOIDAL,
        .gelu = TG_GELU_TANH,
        .t_freq_dim = 16,
        .t_hidden = 32,
    };
    check_parity("parity_dit.h5", &config);
}

Test(ddpm_parity, mlp_matches_pytorch) {
    ddpm_model_config config = {
        .arch = DDPM_ARCH_MLP,
        .data_dim = PIXELS,
        .hidden = 8,
        .t_freq_dim = 16,
        .t_hidden = 32,
    };
    check_parity("parity_mlp.h5", &config);
}

/* The fixed 2-D position table equals the reference's buffer. */
Test(ddpm_parity, position_table_matches_pytorch) {
    hid_t file = H5Fopen(fixture_path("parity_dit.h5"), H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert_geq(file, 0, "cannot open parity_dit.h5");
    float ref[49 * 16];
    read_dataset(file, "buffers/pos_embed", H5T_NATIVE_FLOAT, ref, 49 * 16);
    H5Fclose(file);
    tg_scalar table[49 * 16];
    cr_assert_eq(tg_sinusoid_encode_2d(table, 7, 7, 16, TG_SINUSOID_HALVES), TG_OK);
    double expected[49 * 16];
    for (int i = 0; i < 49 * 16; i++) {
        expected[i] = ref[i];
    }
    expect_close("position table", table, expected, 49 * 16, 1e-7, 0.0);
}
