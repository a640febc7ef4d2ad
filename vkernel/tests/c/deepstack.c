// A recursion 6,000 frames of 1 KiB deep (6 MiB of stack, within the 8 MiB
// RLIMIT_STACK), then the same in a thread of 8 MiB default stack: prints
// the sum so the frames cannot be optimised away. tests/limits.rs counts
// the faults it costs (a stack grows down in doubling windows).
#include <pthread.h>
#include <stdio.h>

static long rec(int n) {
    volatile char buf[1024];
    buf[0] = (char)n;
    if (n == 0)
        return buf[0];
    return rec(n - 1) + buf[0];
}

static void *thread(void *arg) {
    (void)arg;
    return (void *)rec(6000);
}

int main(void) {
    long main_sum = rec(6000);
    pthread_t t;
    void *r = NULL;
    if (pthread_create(&t, NULL, thread, NULL) != 0 || pthread_join(t, &r) != 0)
        return 1;
    printf("deep %ld %ld\n", main_sum, (long)r);
    return main_sum == (long)r ? 0 : 1;
}
