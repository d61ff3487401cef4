/* The liveness heartbeat (see comm.h, ct_comm_set_heartbeat).
 *
 * MPI gives no way to learn that a peer went silent: a blocking
 * MPI_Allreduce waits forever, and the ring's own timeout only fires when
 * an operation makes no progress for minutes. So every rank runs a thread
 * of its own, outside MPI, with a UDP socket: at start-up the ranks
 * exchange their addresses (every IPv4 address of every interface, the
 * host name, the port) over MPI once; then each thread sends a small
 * datagram to every peer every `interval` and notes when it last heard of
 * each. A peer silent for `silence` seconds has died, been stopped, or
 * lost its network: the thread prints which rank on which host, and ends
 * its own process with exit code 1, so that the launcher (which notices a
 * rank exiting without MPI_Finalize) ends the rest of the job. The main
 * thread may be stuck inside MPI then; nothing else could end it.
 *
 * A rank that finishes normally says goodbye (three datagrams), so that
 * peers still busy do not take its silence for a failure. Datagrams carry
 * a random job token: a stray one from another job is ignored. */
#define _GNU_SOURCE /* getifaddrs */
#include "comm_impl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HB_ADDRS 8
#define HB_HELLO 1
#define HB_BYE 2

typedef struct hb_peer {
    uint32_t addr[HB_ADDRS]; /* network byte order */
    uint16_t port;           /* network byte order */
    uint8_t n_addr;
    char host[64];
} hb_peer;

typedef struct hb_packet {
    uint64_t token;
    uint32_t rank, kind;
} hb_packet;

struct ct_heartbeat {
    int fd;
    int rank, size;
    uint64_t token;
    hb_peer *peers;
    double *last;     /* monotonic time each peer was last heard of */
    char *gone;       /* peer said goodbye */
    pthread_t thread;
    int running;
    atomic_int quit;
    _Atomic double silence; /* seconds; 0 = off */
};


void (*ct_comm_dead_peer_hook)(int code);

static void local_addresses(hb_peer *me)
{
    struct ifaddrs *list = NULL, *i;
    me->n_addr = 0;
    if (getifaddrs(&list) == 0) {
        for (i = list; i && me->n_addr < HB_ADDRS; i = i->ifa_next)
            if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET && (i->ifa_flags & IFF_UP))
                me->addr[me->n_addr++] = ((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr;
        freeifaddrs(list);
    }
    if (me->n_addr == 0) me->addr[me->n_addr++] = htonl(INADDR_LOOPBACK);
}

static int is_loopback(uint32_t a) { return (ntohl(a) >> 24) == 127; }

static void send_all(struct ct_heartbeat *h, uint32_t kind)
{
    hb_packet p = {h->token, (uint32_t)h->rank, kind};
    const hb_peer *me = &h->peers[h->rank];
    for (int r = 0; r < h->size; r++) {
        if (r == h->rank || h->gone[r]) continue;
        const hb_peer *q = &h->peers[r];
        int same_host = strcmp(q->host, me->host) == 0;
        for (int k = 0; k < q->n_addr; k++) {
            if (is_loopback(q->addr[k]) != same_host) continue; /* another host's 127.0.0.1 is ours */
            struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = q->port};
            to.sin_addr.s_addr = q->addr[k];
            ssize_t w = sendto(h->fd, &p, sizeof p, MSG_DONTWAIT, (struct sockaddr *)&to, sizeof to);
            (void)w; /* an unreachable address is simply not the one that works */
        }
    }
}

static void receive(struct ct_heartbeat *h, double now)
{
    hb_packet p;
    for (;;) {
        ssize_t n = recv(h->fd, &p, sizeof p, MSG_DONTWAIT);
        if (n < 0) return;
        if (n != (ssize_t)sizeof p || p.token != h->token || p.rank >= (uint32_t)h->size || (int)p.rank == h->rank)
            continue;
        h->last[p.rank] = now;
        if (p.kind == HB_BYE) h->gone[p.rank] = 1;
    }
}

static void *run(void *arg)
{
    struct ct_heartbeat *h = arg;
    double next = 0;
    while (!atomic_load(&h->quit)) {
        double silence = atomic_load(&h->silence), now = ct_comm_now();
        double interval = silence > 0 ? silence / 10 : 1.0;
        if (interval > 1.0) interval = 1.0;
        if (interval < 0.05) interval = 0.05;
        if (now >= next) {
            send_all(h, HB_HELLO);
            next = now + interval;
        }
        struct pollfd pf = {h->fd, POLLIN, 0};
        int wait_ms = (int)((next - now) * 1000) + 1;
        if (poll(&pf, 1, wait_ms < 1 ? 1 : wait_ms) > 0) receive(h, ct_comm_now());
        now = ct_comm_now();
        if (silence <= 0) {
            for (int r = 0; r < h->size; r++) h->last[r] = now; /* off: nobody can be overdue when it comes on */
            continue;
        }
        for (int r = 0; r < h->size; r++) {
            if (r == h->rank || h->gone[r] || now - h->last[r] <= silence) continue;
            fprintf(stderr,
                    "ctrain: error on rank %d (host %s): no heartbeat from rank %d (host %s) for %.0f s: it died, "
                    "was stopped, or the network to %s is down; ending this rank so that the launcher ends the job\n",
                    h->rank, h->peers[h->rank].host, r, h->peers[r].host, now - h->last[r], h->peers[r].host);
            fflush(stderr);
            fflush(stdout);
            if (ct_comm_dead_peer_hook) ct_comm_dead_peer_hook(1);
            h->gone[r] = 1; /* said once */
        }
    }
    return NULL;
}

void ct_heartbeat_stop(struct ct_comm_state *st)
{
    struct ct_heartbeat *h = st ? st->hb : NULL;
    if (!h) return;
    if (h->running) {
        atomic_store(&h->quit, 1);
        pthread_join(h->thread, NULL);
        for (int i = 0; i < 3; i++) send_all(h, HB_BYE); /* datagrams may be lost */
    }
    if (h->fd >= 0) close(h->fd);
    free(h->peers);
    free(h->last);
    free(h->gone);
    free(h);
    st->hb = NULL;
}

ct_status ct_heartbeat_start(ct_comm *c, double silence)
{
    struct ct_comm_state *st = c->st;
    struct ct_heartbeat *h = calloc(1, sizeof *h);
    if (!h) return CT_FAIL(CT_ERR_NOMEM, "heartbeat: out of memory");
    st->hb = h;
    h->rank = c->rank;
    h->size = c->size;
    h->fd = -1;
    atomic_init(&h->silence, silence);
    atomic_init(&h->quit, 0);
    h->peers = calloc((size_t)c->size, sizeof *h->peers);
    h->last = calloc((size_t)c->size, sizeof *h->last);
    h->gone = calloc((size_t)c->size, 1);
    if (!h->peers || !h->last || !h->gone) return CT_FAIL(CT_ERR_NOMEM, "heartbeat: out of memory");
    /* Every rank must take part in the exchange below, so a local failure
     * is only reported after it (and then every rank knows). */
    int bad = 0;
    char why[160] = "";
    hb_peer *me = &h->peers[c->rank];
    h->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in any = {.sin_family = AF_INET, .sin_port = 0};
    any.sin_addr.s_addr = htonl(INADDR_ANY);
    socklen_t len = sizeof any;
    if (h->fd < 0 || bind(h->fd, (struct sockaddr *)&any, sizeof any) != 0 ||
        getsockname(h->fd, (struct sockaddr *)&any, &len) != 0) {
        bad = 1;
        snprintf(why, sizeof why, "a UDP socket: %s", strerror(errno));
    }
    me->port = any.sin_port;
    local_addresses(me);
    if (gethostname(me->host, sizeof me->host - 1) != 0) snprintf(me->host, sizeof me->host, "?");
    uint64_t token = ((uint64_t)getpid() << 32) ^ (uint64_t)(ct_comm_now() * 1e9);
    int rc = MPI_Bcast(&token, 1, MPI_UINT64_T, 0, st->comm);
    if (rc == MPI_SUCCESS)
        rc = MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, h->peers, (int)sizeof *h->peers, MPI_BYTE, st->comm);
    if (rc == MPI_SUCCESS) rc = MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_MAX, st->comm);
    if (rc != MPI_SUCCESS) return ct_comm_mpi_error(c, "comm init", "the heartbeat's address exchange", -1, rc);
    if (bad)
        return CT_FAIL(CT_ERR_COMM, "heartbeat: a rank could not open %s (set [distributed] heartbeat = 0 to run without)",
                       why[0] ? why : "its UDP socket");
    h->token = token;
    double now = ct_comm_now();
    for (int r = 0; r < c->size; r++) h->last[r] = now;
    if (pthread_create(&h->thread, NULL, run, h) != 0)
        return CT_FAIL(CT_ERR_RUNTIME, "heartbeat: cannot start its thread");
    h->running = 1;
    return CT_OK;
}

void ct_heartbeat_set(struct ct_comm_state *st, double silence)
{
    if (st && st->hb) atomic_store(&st->hb->silence, silence);
}
