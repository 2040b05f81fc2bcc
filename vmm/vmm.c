/*
 * vmm.c — engine selection for monitor.engine = "auto" | "hv" | "bt".
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "vmm.h"

/* Engines are optional at link time (bt needs Zydis): weak references. */
extern const struct vmm_engine vmm_engine_hv __attribute__((weak));
extern const struct vmm_engine vmm_engine_bt __attribute__((weak));

static const struct vmm_engine *vmm_find(const char *name)
{
	if (strcasecmp(name, "hv") == 0)
		return &vmm_engine_hv;
	if (strcasecmp(name, "bt") == 0)
		return &vmm_engine_bt;
	return NULL;
}

const struct vmm_engine *vmm_engine_select(const char *name, char *why, size_t whylen)
{
	char hv_why[256] = "";

	if (strcasecmp(name, "hv") == 0 || strcasecmp(name, "bt") == 0) {
		const struct vmm_engine *e = vmm_find(name);
		if (!e) {
			snprintf(why, whylen, "engine \"%s\" is not built into this vireo-vmx", name);
			return NULL;
		}
		if (e->probe && !e->probe(hv_why, sizeof(hv_why)) && e == &vmm_engine_hv) {
			/* An explicit request for hv still runs; the log says what to expect. */
			snprintf(why, whylen, "engine hv (requested by monitor.engine; warning: %s)", hv_why);
			return e;
		}
		snprintf(why, whylen, "engine %s (requested by monitor.engine)", e->name);
		return e;
	}
	if (strcasecmp(name, "auto") != 0) {
		snprintf(why, whylen, "unknown engine \"%s\" (expected auto, hv or bt)", name);
		return NULL;
	}
	if (&vmm_engine_hv && vmm_engine_hv.probe(hv_why, sizeof(hv_why))) {
		snprintf(why, whylen, "engine hv (auto: KVM runs guest code at hardware speed)");
		return &vmm_engine_hv;
	}
	if (!&vmm_engine_hv)
		snprintf(hv_why, sizeof(hv_why), "hv is not built in");
	if (&vmm_engine_bt) {
		snprintf(why, whylen, "engine bt (auto: %s)", hv_why);
		return &vmm_engine_bt;
	}
	snprintf(why, whylen, "no usable engine: %s, and bt is not built in", hv_why);
	return NULL;
}

const char *vmm_exit_reason_name(enum vmm_exit_reason r)
{
	static const char *const names[VMM_EXIT__COUNT] = {
		[VMM_EXIT_NONE] = "none",
		[VMM_EXIT_IO] = "io",
		[VMM_EXIT_MMIO] = "mmio",
		[VMM_EXIT_KICKED] = "kicked",
		[VMM_EXIT_HLT] = "hlt",
		[VMM_EXIT_SHUTDOWN] = "shutdown",
		[VMM_EXIT_RESET] = "reset",
		[VMM_EXIT_INTERNAL] = "internal",
		[VMM_EXIT_UNKNOWN] = "unknown",
	};
	if ((unsigned)r >= VMM_EXIT__COUNT || !names[r])
		return "invalid";
	return names[r];
}
