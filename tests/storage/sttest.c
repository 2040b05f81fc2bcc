/*
 * sttest.c — see sttest.h.
 */
#include "sttest.h"

#include <stdio.h>
#include <stdlib.h>

#include "vmx/pci.h"

struct devtest *st_vm(const char *vmx_text, const char *dev)
{
	struct devtest *t = devtest_new(vmx_text);

	if (!t)
		return NULL;
	if (devtest_add(t, "ioapic") != 0 || devtest_add(t, "pci") != 0 || devtest_add(t, dev) != 0) {
		devtest_free(t);
		return NULL;
	}
	return t;
}

void st_map_bar(struct devtest *t, unsigned slot, unsigned bar, uint32_t addr)
{
	struct pci_bus *bus = pci_bus_of(t->vm);

	pci_config_write(bus, slot << 3, PCI_BASE_ADDRESS_0 + 4 * bar, 4, addr);
	pci_config_write(bus, slot << 3, PCI_COMMAND, 2,
	                 PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
}

uint32_t st_cfg_read(struct devtest *t, unsigned slot, unsigned off, unsigned size)
{
	return pci_config_read(pci_bus_of(t->vm), slot << 3, off, size);
}

void *st_mem(struct devtest *t, uint64_t gpa, size_t len)
{
	void *p = gmem_ptr(&t->vm->mem, gpa, len);

	if (!p) {
		fprintf(stderr, "sttest: 0x%llx+%zu is not guest RAM\n", (unsigned long long)gpa, len);
		exit(1);
	}
	return p;
}
