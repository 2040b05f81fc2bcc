/*
 * piix.c — the i440FX host bridge (00:00.0) and the PIIX3 PCI-to-ISA bridge
 * (00:01.0).
 *
 * The PAM registers (0x59-0x5F) switch 0xC0000-0xFFFFF between the BIOS
 * ROM and shadow RAM for a firmware boot (vmx_vm_set_pam; a direct kernel
 * boot has plain RAM there).  PIRQRC[A-D] (0x60-0x63) are stored, not acted
 * on, because PCI INTx reaches the IOAPIC directly (GSI 16-19, the _PRT in
 * APIC mode).  Routing PIRQs to the 8259 for guests that run without an
 * IOAPIC is later work.
 *
 * The host bridge carries QEMU's subsystem ids (1af4:1100): unmodified
 * SeaBIOS uses fw_cfg only on a northbridge that says it is QEMU's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmx/device.h"
#include "vmx/log.h"
#include "vmx/pci.h"
#include "vmx/vm.h"

#define I440FX_PAM0    0x59
#define I440FX_NPAM    7
#define I440FX_SMRAM   0x72
#define PIIX_PIRQRC    0x60
#define PIIX_NPIRQ     4
#define PIIX_TOM       0x69      /* top of memory, ISA-visible, in MiB units */

struct piix {
	struct pci_dev host;
	struct pci_dev isa;
	/* Copies of the stored registers, for save/restore and logging. */
	uint8_t pam[I440FX_NPAM];
	uint8_t smram;
	uint8_t pirqrc[PIIX_NPIRQ];
};

static const struct vstate_field piix_fields[] = {
	VSTATE_FIELD(struct piix, pam),
	VSTATE_FIELD(struct piix, smram),
	VSTATE_FIELD(struct piix, pirqrc),
	VSTATE_END
};

static const struct vstate_desc piix_state = {
	.name = "piix", .version = 1, .fields = piix_fields,
};

static void piix_host_cfg_write(struct pci_dev *d, unsigned off, unsigned size, uint32_t val)
{
	struct piix *p = d->opaque;
	bool changed = false;

	(void)off;
	(void)size;
	(void)val;
	for (unsigned i = 0; i < I440FX_NPAM; i++) {
		changed |= p->pam[i] != d->config[I440FX_PAM0 + i];
		p->pam[i] = d->config[I440FX_PAM0 + i];
	}
	p->smram = d->config[I440FX_SMRAM];
	if (changed && d->vm)
		vmx_vm_set_pam(d->vm, p->pam);
}

static void piix_isa_cfg_write(struct pci_dev *d, unsigned off, unsigned size, uint32_t val)
{
	struct piix *p = d->opaque;

	for (unsigned i = 0; i < PIIX_NPIRQ; i++) {
		uint8_t v = d->config[PIIX_PIRQRC + i];
		if (v != p->pirqrc[i]) {
			p->pirqrc[i] = v;
			if (!(v & 0x80))
				vlog_debug("piix: PIRQ%c routed to IRQ %u (stored; INTx goes to the IOAPIC)",
				           'A' + i, v & 0x0F);
		}
	}
}

static void piix_set_defaults(struct piix *p)
{
	for (unsigned i = 0; i < I440FX_NPAM; i++)
		p->host.config[I440FX_PAM0 + i] = 0;
	p->host.config[I440FX_SMRAM] = 0x02;
	for (unsigned i = 0; i < PIIX_NPIRQ; i++)
		p->isa.config[PIIX_PIRQRC + i] = 0x80;   /* routing disabled */
	p->isa.config[PIIX_TOM] = 0x02;
	piix_host_cfg_write(&p->host, 0, 0, 0);
	piix_isa_cfg_write(&p->isa, 0, 0, 0);
	if (p->host.vm)
		vmx_vm_set_pam(p->host.vm, p->pam);   /* reset: the ROM is back below 1 MiB */
}

static int piix_init(struct vdev *dev, char *err, size_t errlen)
{
	struct piix *p = calloc(1, sizeof(*p));

	if (!p) {
		snprintf(err, errlen, "piix: out of memory");
		return -1;
	}
	p->host = (struct pci_dev){
		.name = "i440fx", .vendor_id = 0x8086, .device_id = 0x1237, .revision = 0x02,
		.subsys_vendor_id = 0x1af4, .subsys_id = 0x1100,
		.class_code = 0x060000, .cfg_write = piix_host_cfg_write, .opaque = p,
	};
	p->isa = (struct pci_dev){
		.name = "piix3", .vendor_id = 0x8086, .device_id = 0x7000,
		.class_code = 0x060100, .cfg_write = piix_isa_cfg_write, .opaque = p,
	};
	if (pci_register(dev->vm, &p->host, 0, 0, err, errlen) != 0) {
		free(p);
		return -1;
	}
	if (pci_register(dev->vm, &p->isa, 1, 0, err, errlen) != 0) {
		pci_unregister(&p->host);
		free(p);
		return -1;
	}
	pci_set_wmask(&p->host, I440FX_PAM0, I440FX_NPAM, 0x33);
	pci_set_wmask(&p->host, I440FX_SMRAM, 1, 0x78);
	pci_set_wmask(&p->isa, PIIX_PIRQRC, PIIX_NPIRQ, 0x8F);
	pci_set_wmask(&p->isa, PIIX_TOM, 1, 0xFE);
	piix_set_defaults(p);
	dev->priv = p;
	return 0;
}

static void piix_reset(struct vdev *dev)
{
	piix_set_defaults(dev->priv);
}

/* After a restore: the saved PAM values decide what is mapped below 1 MiB. */
static void piix_post_load(struct vdev *dev)
{
	struct piix *p = dev->priv;

	for (unsigned i = 0; i < I440FX_NPAM; i++)
		p->host.config[I440FX_PAM0 + i] = p->pam[i];
	vmx_vm_set_pam(dev->vm, p->pam);
}

static void piix_destroy(struct vdev *dev)
{
	struct piix *p = dev->priv;

	if (!p)
		return;
	pci_unregister(&p->isa);
	pci_unregister(&p->host);
	free(p);
	dev->priv = NULL;
}

static const struct vdev_class piix_class = {
	.name = "piix",
	.order = 35,
	.init = piix_init,
	.reset = piix_reset,
	.destroy = piix_destroy,
	.state = &piix_state,
	.post_load = piix_post_load,
};

VDEV_REGISTER(piix_class)
