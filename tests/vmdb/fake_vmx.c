/*
 * fake_vmx.c — stands in for vireo-vmx under vireod in the end-to-end test:
 * it runs the real vmdb/vmx_link.c on a poll loop and acts on power
 * requests the way the VMX should (no guest behind it).
 *
 *   fake_vmx PATH.vmx      (VIREO_VMDB_SOCK and VIREO_VM_ID from vireod)
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmx_link.h"

static int exit_status = -1;
static int resets;
static struct vmx_link *lk;

static void on_req(void *opaque, enum vmx_link_request req)
{
	switch (req) {
	case VMX_LINK_REQ_OFF:
		vmx_link_publish_power(lk, VMX_LINK_STOPPING, "guest shutting down");
		vmx_link_publish_power(lk, VMX_LINK_OFF, "guest powered off");
		exit_status = 0;
		break;
	case VMX_LINK_REQ_HARDOFF:
		vmx_link_publish_power(lk, VMX_LINK_OFF, "powered off (hard)");
		exit_status = 0;
		break;
	case VMX_LINK_REQ_RESET: {
		char n[16];
		snprintf(n, sizeof(n), "%d", ++resets);
		vmx_link_publish(lk, "stats/exits", n);
		break;
	}
	default:
		break;
	}
}

int main(int argc, char **argv)
{
	char err[256];
	if (argc != 2)
		return 2;
	lk = vmx_link_open_env(err, sizeof(err));
	if (!lk) {
		fprintf(stderr, "fake_vmx: no link: %s\n", err);
		return 1;
	}
	if (err[0])
		fprintf(stderr, "fake_vmx: %s\n", err);
	vmx_link_on_request(lk, on_req, NULL);
	vmx_link_publish_power(lk, VMX_LINK_ON, "running");
	while (exit_status < 0) {
		struct pollfd p = { .fd = vmx_link_fd(lk), .events = POLLIN };
		if (poll(&p, 1, 1000) > 0)
			vmx_link_dispatch(lk);
		else
			vmx_link_tick(lk);
	}
	vmx_link_close(lk);
	return exit_status;
}
