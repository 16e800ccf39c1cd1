/* hog: allocate and touch memory 1 MiB at a time until killed or done.
 * usage: hog <MiB> [oom_score_adj [hold_seconds]]   MiB 0 = until killed */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
int main(int argc, char **argv) {
    long mib = argc > 1 ? atol(argv[1]) : 200;
    if (argc > 2) {
        int fd = open("/proc/self/oom_score_adj", O_WRONLY);
        if (fd < 0 || write(fd, argv[2], strlen(argv[2])) < 0) { perror("oom_score_adj"); return 2; }
        close(fd);
    }
    for (long i = 0; mib == 0 || i < mib; i++) {
        char *p = malloc(1 << 20);
        if (!p) { puts("malloc failed"); return 3; }
        memset(p, 0xa5, 1 << 20);
    }
    if (argc > 3) sleep((unsigned)atoi(argv[3]));
    puts("survived");
    return 0;
}
