/*
 * ginfo.c — guest information for the host (SetGuestInfo, spec 4.6):
 * host name, OS name, uptime and the NICs (the v1 binary list, IPv4).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "toolsd.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

enum {
	GI_DNS_NAME = 1, GI_IPADDRESS = 2, GI_BUILD_NUMBER = 4, GI_OS_NAME_FULL = 5, GI_OS_NAME = 6,
	GI_UPTIME = 7,
};

/* GuestNicInfoV1: u32 count, then 16 x {u32 ipCount, mac[19], ip[8][16], pad} (152 bytes). */
#define NIC_MAX 16
#define NIC_IPS 8
#define NIC_ENTRY 152
#define NIC_MAC_OFF 4
#define NIC_IP_OFF 23
#define NIC_BLOB (4 + NIC_MAX * NIC_ENTRY)

static void os_names(char *full, size_t flen, char *shortname, size_t slen)
{
	struct utsname u;
	if (uname(&u) != 0)
		memset(&u, 0, sizeof(u));
	snprintf(full, flen, "Linux %s", u.release);
	FILE *f = fopen("/etc/os-release", "r");
	if (f) {
		char line[512];
		while (fgets(line, sizeof(line), f)) {
			if (strncmp(line, "PRETTY_NAME=", 12) != 0)
				continue;
			char *v = line + 12;
			v[strcspn(v, "\n")] = '\0';
			size_t n = strlen(v);
			if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
				v[n - 1] = '\0';
				v++;
			}
			size_t m = strlen(v);
			if (m > 0 && flen > 0) {
				m = m < flen - 1 ? m : flen - 1;
				memcpy(full, v, m);
				full[m] = '\0';
			}
		}
		fclose(f);
	}
	/* VMware's guest id for a Linux kernel of this major version */
	int major = atoi(u.release);
	bool is64 = strcmp(u.machine, "x86_64") == 0;
	if (major >= 3)
		snprintf(shortname, slen, "other%dxlinux%s", major > 6 ? 6 : major, is64 ? "-64" : "");
	else
		snprintf(shortname, slen, "otherlinux%s", is64 ? "-64" : "");
}

static void read_mac(const char *ifname, char *mac, size_t len)
{
	char path[128], buf[64] = "";
	snprintf(path, sizeof(path), "/sys/class/net/%s/address", ifname);
	FILE *f = fopen(path, "r");
	if (f) {
		if (!fgets(buf, sizeof(buf), f))
			buf[0] = '\0';
		fclose(f);
	}
	buf[strcspn(buf, "\n")] = '\0';
	for (char *p = buf; *p; p++)
		if (*p == ':')
			*p = '-';
	snprintf(mac, len, "%s", buf);
}

/* The v1 NIC blob: returns the number of NICs found (loopback skipped). */
static unsigned nic_blob(uint8_t *blob)
{
	memset(blob, 0, NIC_BLOB);
	struct ifaddrs *ifa = NULL;
	if (getifaddrs(&ifa) != 0)
		return 0;
	char names[NIC_MAX][IF_NAMESIZE];
	unsigned count = 0;
	for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || (i->ifa_flags & IFF_LOOPBACK))
			continue;
		unsigned k;
		for (k = 0; k < count; k++)
			if (strcmp(names[k], i->ifa_name) == 0)
				break;
		if (k == count) {
			if (count == NIC_MAX)
				continue;
			snprintf(names[count], IF_NAMESIZE, "%s", i->ifa_name);
			char mac[19];
			read_mac(i->ifa_name, mac, sizeof(mac));
			memcpy(blob + 4 + count * NIC_ENTRY + NIC_MAC_OFF, mac, strlen(mac));
			count++;
		}
		uint8_t *e = blob + 4 + k * NIC_ENTRY;
		uint32_t ips;
		memcpy(&ips, e, 4);
		if (ips == NIC_IPS)
			continue;
		char ip[INET_ADDRSTRLEN] = "";
		inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr, ip, sizeof(ip));
		memcpy(e + NIC_IP_OFF + ips * 16, ip, strlen(ip));
		ips++;
		memcpy(e, &ips, 4);
	}
	freeifaddrs(ifa);
	uint32_t c = count;
	memcpy(blob, &c, 4);
	return count;
}

bool ginfo_primary_ip(char *buf, size_t len)
{
	uint8_t blob[NIC_BLOB];
	if (nic_blob(blob) == 0)
		return false;
	uint32_t ips;
	memcpy(&ips, blob + 4, 4);
	if (ips == 0)
		return false;
	snprintf(buf, len, "%.16s", (const char *)blob + 4 + NIC_IP_OFF);
	return true;
}

static void send_text(struct toolsd *t, int key, const char *value)
{
	/* two spaces after SetGuestInfo, as vmtoolsd sends it */
	if (!toolsd_rpcif(t, "SetGuestInfo  %d %s", key, value) && t->verbose)
		toolsd_log("SetGuestInfo %d refused", key);
}

void ginfo_gather(struct toolsd *t)
{
	char host[256] = "", full[256], shortname[64], buf[64];
	if (gethostname(host, sizeof(host) - 1) != 0)
		snprintf(host, sizeof(host), "localhost");
	send_text(t, GI_DNS_NAME, host);
	os_names(full, sizeof(full), shortname, sizeof(shortname));
	send_text(t, GI_OS_NAME_FULL, full);
	send_text(t, GI_OS_NAME, shortname);
	send_text(t, GI_BUILD_NUMBER, "build-vireo-" TOOLSD_VERSION_STR);
	struct timespec ts;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	snprintf(buf, sizeof(buf), "%lld", (long long)ts.tv_sec * 100 + ts.tv_nsec / 10000000);
	send_text(t, GI_UPTIME, buf);

	static const char prefix[] = "SetGuestInfo  2 ";
	uint8_t msg[sizeof(prefix) - 1 + NIC_BLOB];
	memcpy(msg, prefix, sizeof(prefix) - 1);
	nic_blob(msg + sizeof(prefix) - 1);
	if (!toolsd_rpci(t, msg, sizeof(msg)) && t->verbose)
		toolsd_log("SetGuestInfo 2 (NICs) refused");
	if (t->broadcast_ip && ginfo_primary_ip(buf, sizeof(buf)))
		toolsd_rpcif(t, "info-set guestinfo.ip %s", buf);
}
