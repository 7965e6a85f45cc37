/*
 * netflood: sends Ethernet frames on an interface as fast as the kernel
 * takes them, for tests of pvisor's switch limits
 * (tests/virtio_net_test.go). It uses an AF_PACKET socket with a
 * transmit ring (PACKET_TX_RING) and no queueing discipline
 * (PACKET_QDISC_BYPASS), so that one system call sends a ring of frames:
 * on a slow CPU the guest then spends its time in the driver, not in
 * system calls. Each frame goes from the interface's
 * own address to DSTMAC, EtherType 0x88b5 (IEEE local experimental), with
 * a payload of SIZE bytes (default 1500, the MTU). Built statically into
 * the initramfs as /bin/netflood.
 *
 * Usage: netflood IFACE DSTMAC [SECONDS [SIZE]]
 *
 * It prints "netflood: sending" once the socket is ready, and at the end
 * "netflood: sent N frames" (SECONDS 0, the default, runs until killed).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sys/mman.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what)
{
	fprintf(stderr, "netflood: %s: %s\n", what, strerror(errno));
	exit(1);
}

int main(int argc, char **argv)
{
	enum { FRAME_SIZE = 2048, FRAMES = 64 };
	unsigned char frame[1514];
	struct tpacket_req req;
	unsigned char *ring;
	int version = TPACKET_V2, one = 1, k;
	unsigned int m[6];
	struct sockaddr_ll sll;
	struct ifreq ifr;
	long seconds = 0, size = 1500, sent = 0, tries = 0;
	struct timespec start, now;
	int fd, i;

	if (argc < 3 || argc > 5) {
		fprintf(stderr, "usage: netflood IFACE DSTMAC [SECONDS [SIZE]]\n");
		return 2;
	}
	if (sscanf(argv[2], "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) != 6) {
		fprintf(stderr, "netflood: bad MAC %s\n", argv[2]);
		return 2;
	}
	if (argc > 3)
		seconds = atol(argv[3]);
	if (argc > 4)
		size = atol(argv[4]);
	if (size < 46 || size > 1500) {
		fprintf(stderr, "netflood: payload of %ld bytes: want 46..1500\n", size);
		return 2;
	}
	fd = socket(AF_PACKET, SOCK_RAW, htons(0x88b5));
	if (fd < 0)
		die("socket");
	memset(&ifr, 0, sizeof(ifr));
	strncpy(ifr.ifr_name, argv[1], IFNAMSIZ - 1);
	if (ioctl(fd, SIOCGIFINDEX, &ifr) < 0)
		die("SIOCGIFINDEX");
	memset(&sll, 0, sizeof(sll));
	sll.sll_family = AF_PACKET;
	sll.sll_protocol = htons(0x88b5);
	sll.sll_ifindex = ifr.ifr_ifindex;
	if (bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0)
		die("bind");
	if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0)
		die("SIOCGIFHWADDR");
	for (i = 0; i < 6; i++)
		frame[i] = m[i];
	memcpy(frame + 6, ifr.ifr_hwaddr.sa_data, 6);
	frame[12] = 0x88;
	frame[13] = 0xb5;
	for (i = 14; i < 14 + size; i++)
		frame[i] = (unsigned char)i;
	if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &version, sizeof(version)) < 0)
		die("PACKET_VERSION");
	if (setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one)) < 0)
		die("PACKET_QDISC_BYPASS");
	memset(&req, 0, sizeof(req));
	req.tp_block_size = FRAME_SIZE * FRAMES;
	req.tp_block_nr = 1;
	req.tp_frame_size = FRAME_SIZE;
	req.tp_frame_nr = FRAMES;
	if (setsockopt(fd, SOL_PACKET, PACKET_TX_RING, &req, sizeof(req)) < 0)
		die("PACKET_TX_RING");
	ring = mmap(NULL, FRAME_SIZE * FRAMES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (ring == MAP_FAILED)
		die("mmap");
	printf("netflood: sending\n");
	fflush(stdout);
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		int queued = 0;

		for (k = 0; k < FRAMES; k++) {
			struct tpacket2_hdr *h = (struct tpacket2_hdr *)(ring + k * FRAME_SIZE);

			if (h->tp_status != TP_STATUS_AVAILABLE)
				continue;
			memcpy((unsigned char *)h + TPACKET_ALIGN(sizeof(*h)), frame, 14 + size);
			h->tp_len = 14 + size;
			__atomic_store_n(&h->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
			queued++;
		}
		if (send(fd, NULL, 0, 0) < 0) {
			if (errno != ENOBUFS && errno != EAGAIN && errno != EINTR)
				die("send");
		} else {
			sent += queued;
		}
		if (seconds > 0 && (++tries & 7) == 0) {
			clock_gettime(CLOCK_MONOTONIC, &now);
			if (now.tv_sec - start.tv_sec >= seconds)
				break;
		}
	}
	printf("netflood: sent %ld frames\n", sent);
	return 0;
}
