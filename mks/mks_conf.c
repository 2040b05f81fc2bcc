/*
 * mks_conf.c — the MKS's .vmx keys and the back ends they ask for.
 *
 *   RemoteDisplay.vnc.enabled   "TRUE": serve the console over VNC (default FALSE)
 *   RemoteDisplay.vnc.port      TCP port, default 5900
 *   RemoteDisplay.vnc.ip        listen address, default 127.0.0.1 ("0.0.0.0": all)
 *   RemoteDisplay.vnc.password  VNC password (plain text, as VMware keeps it;
 *                               RFB's VNC authentication uses its first 8 bytes)
 *   mks.screenshotOnSignal      PATH: SIGUSR2 to the vireo-vmx writes a PNG there
 *                               (screenshots for tests and scripts without vireod)
 *
 * Screenshots through VMDB: the vmx watches /vm/<id>/request/screenshot (a
 * path, written by `vireoctl screenshot`), writes the PNG and answers in
 * /vm/<id>/state/screenshot: "ok PATH #N" or "error PATH: why #N" (N counts
 * screenshots, so every answer is a change), then clears the request.
 */
#include "mks_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "vmdb/vmx_link.h"
#include "vmx/config.h"
#include "vmx/log.h"
#include "vmx/vm.h"

/* vmdb/ is linked into vireo-vmx but not into device tests: weak references. */
#pragma weak vmx_link_publish
#pragma weak vmx_link_watch

static int shot_sigfd = -1;
static unsigned shot_count;

int mks_read_config(struct mks *m, struct mks_config *cfg, const struct vmxcfg *vc,
                    char *err, size_t errlen)
{
	uint64_t port;
	const char *s;
	struct in_addr a;

	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->vnc_ip, sizeof(cfg->vnc_ip), "127.0.0.1");
	cfg->vnc_port = 5900;
	if (!vc)
		return 0;
	if (vmxcfg_get_bool(vc, "RemoteDisplay.vnc.enabled", false, &cfg->vnc_enabled, err,
	                    errlen) != 0)
		return -1;
	if (vmxcfg_get_u64(vc, "RemoteDisplay.vnc.port", 5900, 1, 65535, &port, err, errlen) != 0)
		return -1;
	cfg->vnc_port = (uint16_t)port;
	s = vmxcfg_get(vc, "RemoteDisplay.vnc.ip");
	if (s) {
		if (strlen(s) >= sizeof(cfg->vnc_ip) || inet_pton(AF_INET, s, &a) != 1) {
			snprintf(err, errlen, "%s:%u: RemoteDisplay.vnc.ip = \"%s\": not an IPv4 address",
			         vmxcfg_path(vc), vmxcfg_line(vc, "RemoteDisplay.vnc.ip"), s);
			return -1;
		}
		snprintf(cfg->vnc_ip, sizeof(cfg->vnc_ip), "%s", s);
	}
	s = vmxcfg_get(vc, "RemoteDisplay.vnc.password");
	if (s && *s) {
		cfg->vnc_password = strdup(s);
		if (!cfg->vnc_password) {
			snprintf(err, errlen, "mks: out of memory");
			return -1;
		}
	}
	if (cfg->vnc_enabled && !mks_vnc_available()) {
		snprintf(err, errlen, "%s:%u: RemoteDisplay.vnc.enabled = \"TRUE\": this build of Vireo "
		         "has no VNC server (built without libvncserver)", vmxcfg_path(vc),
		         vmxcfg_line(vc, "RemoteDisplay.vnc.enabled"));
		return -1;
	}
	s = vmxcfg_get(vc, "mks.screenshotOnSignal");
	if (s && *s) {
		if (strlen(s) >= sizeof(cfg->shot_on_signal)) {
			snprintf(err, errlen, "%s:%u: mks.screenshotOnSignal: path too long",
			         vmxcfg_path(vc), vmxcfg_line(vc, "mks.screenshotOnSignal"));
			return -1;
		}
		snprintf(cfg->shot_on_signal, sizeof(cfg->shot_on_signal), "%s", s);
		/* Devices are created on the loop thread before any vCPU thread: the
		 * mask is inherited, and the MKS thread reads SIGUSR2 from a signalfd. */
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, SIGUSR2);
		pthread_sigmask(SIG_BLOCK, &set, NULL);
		if (shot_sigfd < 0)
			shot_sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	}
	(void)m;
	return 0;
}

static void shot_on_signal(void *opaque, uint32_t events)
{
	struct mks *m = opaque;
	struct signalfd_siginfo si;
	char err[512];

	while (read(shot_sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		const char *path = mks_config(m)->shot_on_signal;
		if (mks_screenshot(m, path, err, sizeof(err)) != 0)
			vlog_error("mks: screenshot: %s", err);
		else
			vlog_info("mks: screenshot written to %s", path);
	}
}

static void shot_on_request(void *opaque, const char *rel, const char *value)
{
	struct mks *m = opaque;
	struct vmx_link *lk = mks_vm(m)->link;
	char err[512], ans[4800];

	if (!value || !*value || !strcmp(value, "none"))
		return;
	vlog_info("mks: screenshot requested through VMDB: %s", value);
	shot_count++;
	if (value[0] != '/') {
		snprintf(ans, sizeof(ans), "error %s: the path must be absolute #%u", value, shot_count);
	} else if (mks_screenshot(m, value, err, sizeof(err)) != 0) {
		snprintf(ans, sizeof(ans), "error %s #%u", err, shot_count);
	} else {
		snprintf(ans, sizeof(ans), "ok %s #%u", value, shot_count);
	}
	if (vmx_link_publish) {
		vmx_link_publish(lk, "state/screenshot", ans);
		vmx_link_publish(lk, "request/screenshot", "");
	}
}

int mks_backends_start(struct mks *m, char *err, size_t errlen)
{
	const struct mks_config *cfg = mks_config(m);
	struct vmx_vm *vm = mks_vm(m);

	if (cfg->vnc_enabled && mks_vnc_start(m, cfg, err, errlen) != 0)
		return -1;
	if (cfg->shot_on_signal[0] && shot_sigfd >= 0)
		mks_add_fd(m, shot_sigfd, EPOLLIN, shot_on_signal, m);
	if (vm && vm->link && vmx_link_watch && vmx_link_watch(vm->link, "request/screenshot", shot_on_request, m) < 0)
		vlog_warn("mks: cannot watch request/screenshot on VMDB");
	return 0;
}
