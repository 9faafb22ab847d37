/* One epoll wake-up and one read per event: the floor measured by benches/floor/run.
 * Connects to 127.0.0.1:<port>, reads until the writer closes, then prints its own CPU time
 * (/proc/self/schedstat) per read. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: reader <port>\n");
        return 2;
    }
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(atoi(argv[1]));
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) {
        perror("connect");
        return 1;
    }
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = s};
    epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
    static char buf[65536];
    long bytes = 0, reads = 0;
    for (;;) {
        struct epoll_event ready;
        if (epoll_wait(ep, &ready, 1, -1) <= 0)
            continue;
        ssize_t r = read(s, buf, sizeof buf);
        if (r <= 0)
            break;
        bytes += r;
        reads++;
    }
    long long cpu_ns = 0;
    FILE *f = fopen("/proc/self/schedstat", "r");
    if (!f || fscanf(f, "%lld", &cpu_ns) != 1) {
        perror("/proc/self/schedstat");
        return 1;
    }
    printf("%ld reads (%ld bytes): %.1f us of CPU per read, process start included\n", reads,
           bytes, reads ? cpu_ns / 1000.0 / reads : 0.0);
    return 0;
}
