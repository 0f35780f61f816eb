/* Token picking for `charlm sample`: top-k keeps only the k most likely
 * tokens, and the draws follow softmax(logits / temperature). */
#include <criterion/criterion.h>
#include <math.h>

#include "sample.h"

#define V 6

static const tg_scalar logits[V] = {1.0f, 3.0f, -2.0f, 2.5f, 0.0f, 2.9f};

Test(charlm_sample, top_k_one_picks_argmax) {
    tg_rng rng;
    tg_rng_seed(&rng, 1);
    double probs[V];
    for (int i = 0; i < 200; i++) {
        cr_assert_eq(charlm_pick_token(logits, V, 1.0, 1, &rng, probs), 1);
    }
}

Test(charlm_sample, top_k_never_leaves_top_set) {
    tg_rng rng;
    tg_rng_seed(&rng, 2);
    double probs[V];
    int counts[V] = {0};
    for (int i = 0; i < 3000; i++) {
        counts[charlm_pick_token(logits, V, 1.0, 3, &rng, probs)]++;
    }
    /* The three largest logits are at 1, 5 and 3. */
    cr_assert_eq(counts[0] + counts[2] + counts[4], 0, "picked outside the top 3: %d %d %d",
                 counts[0], counts[2], counts[4]);
    cr_assert_gt(counts[1], 0);
    cr_assert_gt(counts[3], 0);
    cr_assert_gt(counts[5], 0);
}

Test(charlm_sample, draws_follow_softmax_with_temperature) {
    const double temperature = 0.7;
    const int draws = 60000;
    tg_rng rng;
    tg_rng_seed(&rng, 3);
    double probs[V];
    int counts[V] = {0};
    for (int i = 0; i < draws; i++) {
        counts[charlm_pick_token(logits, V, temperature, 0, &rng, probs)]++;
    }
    double expected[V];
    double total = 0.0;
    for (int i = 0; i < V; i++) {
        expected[i] = exp((double)logits[i] / temperature);
        total += expected[i];
    }
    for (int i = 0; i < V; i++) {
        double p = expected[i] / total;
        double observed = (double)counts[i] / draws;
        /* Five standard errors of a binomial proportion. */
        double bound = 5.0 * sqrt(p * (1.0 - p) / draws) + 1e-4;
        cr_assert(fabs(observed - p) < bound, "token %d drawn with frequency %.4f, expected %.4f",
                  i, observed, p);
    }
}

/* At temperature 0.001 the runner-up (logit 2.9 against 3.0) has odds of
 * exp(-100), so every draw must be the argmax. */
Test(charlm_sample, low_temperature_concentrates_on_argmax) {
    tg_rng rng;
    tg_rng_seed(&rng, 4);
    double probs[V];
    int argmax = 0;
    for (int i = 0; i < 1000; i++) {
        argmax += charlm_pick_token(logits, V, 0.001, 0, &rng, probs) == 1;
    }
    cr_assert_eq(argmax, 1000, "argmax drawn %d of 1000 times at temperature 0.001", argmax);
}
