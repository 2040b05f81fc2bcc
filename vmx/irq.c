/*
 * irq.c — routing device interrupt lines to the 8259 pair and the IOAPIC.
 */
#include "irq.h"

#include "log.h"
#include "vm.h"

void vmx_irq_attach_pic(struct vmx_vm *vm, const struct vmx_pic_ops *ops, void *opaque)
{
	vm->pic_ops = ops;
	vm->pic = opaque;
}

void vmx_irq_attach_ioapic(struct vmx_vm *vm, const struct vmx_irqchip_ops *ops, void *opaque,
                           void (*eoi)(void *opaque, uint8_t vector))
{
	vm->ioapic_ops = ops;
	vm->ioapic = opaque;
	vm->ioapic_eoi = eoi;
}

void vmx_irq_set(struct vmx_vm *vm, unsigned gsi, bool level)
{
	if (gsi >= VMX_IOAPIC_PINS) {
		vlog_error("irq: GSI %u out of range", gsi);
		return;
	}
	vmx_mutex_lock(&vm->irq_lock);
	if (level)
		vm->isa_levels |= 1u << gsi;
	else
		vm->isa_levels &= ~(1u << gsi);
	vmx_mutex_unlock(&vm->irq_lock);

	/* ISA IRQs reach the PIC on their own pin... */
	if (gsi < 16 && vm->pic_ops)
		vm->pic_ops->set_pin(vm->pic, gsi, level);
	/* ...and the IOAPIC, where the MADT's override puts IRQ0 on pin 2. */
	if (vm->ioapic_ops) {
		unsigned pin = gsi == 0 ? 2 : gsi;
		if (gsi == 2)
			return;   /* IRQ2 is the PIC cascade; pin 2 belongs to IRQ0 */
		vm->ioapic_ops->set_pin(vm->ioapic, pin, level);
	}
}

void vmx_irq_pulse(struct vmx_vm *vm, unsigned gsi)
{
	vmx_irq_set(vm, gsi, true);
	vmx_irq_set(vm, gsi, false);
}

void vmx_irq_pic_output_changed(struct vmx_vm *vm)
{
	/* The PIC's INTR is wired to the BSP's LINT0. */
	vmx_vm_kick(vm, 0);
}

void vmx_irq_msi(struct vmx_vm *vm, uint64_t addr, uint32_t data)
{
	if (!vm->engine || !vm->evm)
		return;
	vm->engine->vm_msi(vm->evm, addr, data);
}
