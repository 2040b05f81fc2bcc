/*
 * irq.h — interrupt routing on the PC platform.
 *
 * Devices raise ISA IRQs / GSIs here.  GSIs 0-15 drive both the 8259 pair
 * and the IOAPIC (with the ISA override IRQ0 -> GSI2 that the MADT
 * declares); GSIs 16-23 (PCI INTx) drive the IOAPIC only.  The IOAPIC
 * turns pin changes into MSI-style messages for the engine's LAPICs.
 */
#ifndef VIREO_IRQ_H
#define VIREO_IRQ_H

#include <stdbool.h>
#include <stdint.h>

struct vmx_vm;

#define VMX_IOAPIC_PINS 24

struct vmx_irqchip_ops {
	void (*set_pin)(void *opaque, unsigned pin, bool level);
};

/* The PIC also answers the engine's INTR/INTA (vmm_host_ops). */
struct vmx_pic_ops {
	void (*set_pin)(void *opaque, unsigned pin, bool level);
	bool (*pending)(void *opaque);
	int (*ack)(void *opaque);
};

void vmx_irq_attach_pic(struct vmx_vm *vm, const struct vmx_pic_ops *ops, void *opaque);
void vmx_irq_attach_ioapic(struct vmx_vm *vm, const struct vmx_irqchip_ops *ops, void *opaque,
                           void (*eoi)(void *opaque, uint8_t vector));

/* Level-sensitive line state from a device (gsi < VMX_IOAPIC_PINS). */
void vmx_irq_set(struct vmx_vm *vm, unsigned gsi, bool level);
/* An edge: raise then lower. */
void vmx_irq_pulse(struct vmx_vm *vm, unsigned gsi);

/* The PIC's INTR output changed: wake the BSP so the engine re-checks it. */
void vmx_irq_pic_output_changed(struct vmx_vm *vm);
/* Send an MSI-style message to the LAPICs through the engine. */
void vmx_irq_msi(struct vmx_vm *vm, uint64_t addr, uint32_t data);

#endif
