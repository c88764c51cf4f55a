/* Reference measurement for docs/decisions/lzo.md: liblzo2's LZO1X-1 on every 4 KiB page of
 * a file (all-zero pages skipped), timed in thread CPU time, as `examples/pages.rs` times
 * pvdump-lzo. Not built by cargo; liblzo2's headers are not needed:
 *
 *   cc -O2 -o liblzo_pages crates/lzo/benches/liblzo_pages.c -l:liblzo2.so.2
 *   ./liblzo_pages mem.bin 5
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* liblzo2's exported LZO1X-1 entry point (its work memory is 16384 two-byte entries). */
int lzo1x_1_compress(const unsigned char *src, unsigned long src_len, unsigned char *dst,
                     unsigned long *dst_len, void *wrkmem);

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE [REPEAT]\n", argv[0]);
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f || fseek(f, 0, SEEK_END)) return 1;
    long n = ftell(f);
    unsigned char *m = malloc(n);
    if (!m || fseek(f, 0, SEEK_SET) || fread(m, 1, n, f) != (size_t)n) return 1;
    int reps = argc > 2 ? atoi(argv[2]) : 1;
    static unsigned char zero[4096], out[8192], wrk[1 << 17];
    double best = 1e9;
    unsigned long total = 0, pages = 0;
    for (int r = 0; r < reps; r++) {
        struct timespec a, b;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
        total = 0;
        pages = 0;
        for (long i = 0; i + 4096 <= n; i += 4096) {
            if (!memcmp(m + i, zero, 4096)) continue;
            unsigned long len = 0;
            if (lzo1x_1_compress(m + i, 4096, out, &len, wrk) != 0) return 1;
            total += len < 4096 ? len : 4096;
            pages++;
        }
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
        double t = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
        if (t < best) best = t;
    }
    printf("liblzo2 lzo1x_1 per page: %lu pages in %.4f s of CPU: %.0f MB/s of compressed pages, ratio %.3f\n",
           pages, best, pages * 4096.0 / best / 1e6, (double)total / (pages * 4096.0));
    return 0;
}
