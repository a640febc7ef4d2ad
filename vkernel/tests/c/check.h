// The checks of the C test programs that assert Linux's behaviour: each
// prints "ok - ..." or "FAIL - ..." (with its line and errno); the
// program ends by printing "N failed". Included by the programs that
// run natively first, then in the guest (tests/common:
// c_checks_pass_natively_and_in_the_guest).
#include <errno.h>
#include <stdio.h>

static int failed;
#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (cond) {                                                            \
            printf("ok - " __VA_ARGS__);                                       \
        } else {                                                               \
            failed++;                                                          \
            printf("FAIL - " __VA_ARGS__);                                     \
            printf("   (line %d, errno %d)", __LINE__, errno);                 \
        }                                                                      \
        printf("\n");                                                          \
        fflush(stdout);                                                        \
    } while (0)
