/*
 * uart.c — 16550A UARTs: COM1 (0x3F8, IRQ4) and COM2 (0x2F8, IRQ3).
 *
 * Transmission is instantaneous: a THR write goes straight to the back end
 * (or, in loopback, to the receive FIFO), so THRE and TEMT are always set
 * and the THRE interrupt fires as soon as it is enabled.  Receive has a real
 * 16-byte FIFO with trigger levels and the character-timeout interrupt
 * (four character times at the programmed divisor, on guest time).
 * The IRQ output is gated by MCR.OUT2 as on PC serial cards.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmx/chardev.h"
#include "vmx/device.h"
#include "vmx/iobus.h"
#include "vmx/irq.h"
#include "vmx/lock.h"
#include "vmx/log.h"
#include "vmx/loop.h"
#include "vmx/platform.h"
#include "vmx/vm.h"

#define UART_FIFO 16

/* IER */
#define IER_RDI   0x01
#define IER_THRI  0x02
#define IER_RLSI  0x04
#define IER_MSI   0x08
/* IIR */
#define IIR_NO_INT 0x01
#define IIR_MSI    0x00
#define IIR_THRI   0x02
#define IIR_RDI    0x04
#define IIR_RLSI   0x06
#define IIR_CTI    0x0C
#define IIR_FIFO   0xC0
/* FCR */
#define FCR_ENABLE 0x01
#define FCR_CLR_RX 0x02
#define FCR_CLR_TX 0x04
/* LCR */
#define LCR_DLAB  0x80
/* MCR */
#define MCR_DTR   0x01
#define MCR_RTS   0x02
#define MCR_OUT1  0x04
#define MCR_OUT2  0x08
#define MCR_LOOP  0x10
/* LSR */
#define LSR_DR    0x01
#define LSR_OE    0x02
#define LSR_PE    0x04
#define LSR_FE    0x08
#define LSR_BI    0x10
#define LSR_THRE  0x20
#define LSR_TEMT  0x40
#define LSR_ERR   (LSR_OE | LSR_PE | LSR_FE | LSR_BI)
/* MSR */
#define MSR_DCTS  0x01
#define MSR_DDSR  0x02
#define MSR_TERI  0x04
#define MSR_DDCD  0x08
#define MSR_CTS   0x10
#define MSR_DSR   0x20
#define MSR_RI    0x40
#define MSR_DCD   0x80

struct uart {
	struct vmx_vm *vm;
	struct vmx_mutex lock;
	unsigned index;
	uint16_t base;
	unsigned irq;
	struct chardev *cd;
	struct vmx_timer *timeout;

	/* Saved state. */
	uint8_t rx[UART_FIFO];
	uint8_t rx_head, rx_count;
	uint8_t ier, fcr, lcr, mcr, lsr_err, msr, scr, dll, dlm;
	uint8_t thre_pending, timeout_pending, irq_level;
};

static const struct vstate_field uart_fields[] = {
	VSTATE_FIELD(struct uart, rx),
	VSTATE_FIELD(struct uart, rx_head),
	VSTATE_FIELD(struct uart, rx_count),
	VSTATE_FIELD(struct uart, ier),
	VSTATE_FIELD(struct uart, fcr),
	VSTATE_FIELD(struct uart, lcr),
	VSTATE_FIELD(struct uart, mcr),
	VSTATE_FIELD(struct uart, lsr_err),
	VSTATE_FIELD(struct uart, msr),
	VSTATE_FIELD(struct uart, scr),
	VSTATE_FIELD(struct uart, dll),
	VSTATE_FIELD(struct uart, dlm),
	VSTATE_FIELD(struct uart, thre_pending),
	VSTATE_FIELD(struct uart, timeout_pending),
	VSTATE_END
};

static const struct vstate_desc uart_state = {
	.name = "uart", .version = 1, .fields = uart_fields,
};

static bool uart_fifo_on(const struct uart *u)
{
	return u->fcr & FCR_ENABLE;
}

static unsigned uart_trigger(const struct uart *u)
{
	static const uint8_t levels[4] = { 1, 4, 8, 14 };
	return uart_fifo_on(u) ? levels[u->fcr >> 6] : 1;
}

/* Interrupt identification by datasheet priority. */
static uint8_t uart_iir_locked(const struct uart *u)
{
	if ((u->ier & IER_RLSI) && (u->lsr_err & LSR_ERR))
		return IIR_RLSI;
	if ((u->ier & IER_RDI) && u->rx_count >= uart_trigger(u))
		return IIR_RDI;
	if ((u->ier & IER_RDI) && u->timeout_pending && u->rx_count)
		return IIR_CTI;
	if ((u->ier & IER_THRI) && u->thre_pending)
		return IIR_THRI;
	if ((u->ier & IER_MSI) && (u->msr & 0x0F))
		return IIR_MSI;
	return IIR_NO_INT;
}

static void uart_update_irq(struct uart *u)
{
	bool level = uart_iir_locked(u) != IIR_NO_INT && (u->mcr & MCR_OUT2);

	if (level != (bool)u->irq_level) {
		u->irq_level = level;
		vmx_irq_set(u->vm, u->irq, level);
	}
}

/* Four character times at the current line settings, for the RX timeout. */
static uint64_t uart_timeout_ns(const struct uart *u)
{
	unsigned divisor = (unsigned)u->dlm << 8 | u->dll;
	unsigned bits = 1 + 5 + (u->lcr & 3) + ((u->lcr & 0x08) ? 1 : 0) + ((u->lcr & 0x04) ? 2 : 1);

	if (!divisor)
		divisor = 1;
	/* 1.8432 MHz clock / 16 = 115200 baud at divisor 1. */
	return 4ull * bits * divisor * 1000000000ull / 115200ull;
}

static void uart_rx_activity(struct uart *u)
{
	u->timeout_pending = 0;
	if (!u->timeout)
		return;
	if (uart_fifo_on(u) && u->rx_count && u->rx_count < uart_trigger(u))
		vmx_timer_arm_in(u->timeout, uart_timeout_ns(u));
	else
		vmx_timer_cancel(u->timeout);
}

static void uart_timeout_cb(void *opaque)
{
	struct uart *u = opaque;

	vmx_mutex_lock(&u->lock);
	if (u->rx_count)
		u->timeout_pending = 1;
	uart_update_irq(u);
	vmx_mutex_unlock(&u->lock);
}

static bool uart_rx_push(struct uart *u, uint8_t c)
{
	unsigned cap = uart_fifo_on(u) ? UART_FIFO : 1;

	if (u->rx_count >= cap) {
		u->lsr_err |= LSR_OE;
		return false;
	}
	u->rx[(u->rx_head + u->rx_count) % UART_FIFO] = c;
	u->rx_count++;
	return true;
}

static void uart_rx_clear(struct uart *u)
{
	u->rx_head = u->rx_count = 0;
	u->timeout_pending = 0;
	if (u->timeout)
		vmx_timer_cancel(u->timeout);
}

/* The modem inputs: wired back from MCR in loopback, else a connected peer. */
static void uart_update_msr(struct uart *u)
{
	uint8_t lines, old = u->msr & 0xF0, delta = 0;

	if (u->mcr & MCR_LOOP) {
		lines = (uint8_t)(((u->mcr & MCR_RTS) ? MSR_CTS : 0) | ((u->mcr & MCR_DTR) ? MSR_DSR : 0) |
		                  ((u->mcr & MCR_OUT1) ? MSR_RI : 0) | ((u->mcr & MCR_OUT2) ? MSR_DCD : 0));
	} else {
		lines = MSR_CTS | MSR_DSR | MSR_DCD;
	}
	if ((lines ^ old) & MSR_CTS)
		delta |= MSR_DCTS;
	if ((lines ^ old) & MSR_DSR)
		delta |= MSR_DDSR;
	if ((old & MSR_RI) && !(lines & MSR_RI))
		delta |= MSR_TERI;
	if ((lines ^ old) & MSR_DCD)
		delta |= MSR_DDCD;
	u->msr = (uint8_t)(lines | (u->msr & 0x0F) | delta);
}

static uint8_t uart_read_locked(struct uart *u, unsigned reg)
{
	uint8_t v = 0xFF;

	switch (reg) {
	case 0:
		if (u->lcr & LCR_DLAB)
			return u->dll;
		if (u->rx_count) {
			bool was_full = u->rx_count >= (uart_fifo_on(u) ? UART_FIFO : 1);
			v = u->rx[u->rx_head];
			u->rx_head = (uint8_t)((u->rx_head + 1) % UART_FIFO);
			u->rx_count--;
			uart_rx_activity(u);
			if (was_full && u->cd && !(u->mcr & MCR_LOOP))
				chardev_accept_input(u->cd);
		} else {
			v = 0;
		}
		return v;
	case 1:
		return (u->lcr & LCR_DLAB) ? u->dlm : u->ier;
	case 2: {
		uint8_t iir = uart_iir_locked(u);
		/* Reading IIR is what acknowledges a THRE interrupt. */
		if (iir == IIR_THRI)
			u->thre_pending = 0;
		return (uint8_t)(iir | (uart_fifo_on(u) ? IIR_FIFO : 0));
	}
	case 3:
		return u->lcr;
	case 4:
		return u->mcr;
	case 5:
		v = (uint8_t)(LSR_THRE | LSR_TEMT | u->lsr_err | (u->rx_count ? LSR_DR : 0));
		u->lsr_err = 0;
		return v;
	case 6:
		v = u->msr;
		u->msr &= 0xF0;
		return v;
	case 7:
		return u->scr;
	}
	return v;
}

static void uart_transmit(struct uart *u, uint8_t c)
{
	if (u->mcr & MCR_LOOP) {
		uart_rx_push(u, c);
		uart_rx_activity(u);
	} else if (u->cd) {
		chardev_write(u->cd, &c, 1);
	}
	u->thre_pending = 1;
}

static void uart_write_locked(struct uart *u, unsigned reg, uint8_t v)
{
	switch (reg) {
	case 0:
		if (u->lcr & LCR_DLAB)
			u->dll = v;
		else
			uart_transmit(u, v);
		break;
	case 1:
		if (u->lcr & LCR_DLAB) {
			u->dlm = v;
			break;
		}
		/* Enabling THRI while the THR is empty raises THRE at once. */
		if ((v & IER_THRI) && !(u->ier & IER_THRI))
			u->thre_pending = 1;
		else if (!(v & IER_THRI))
			u->thre_pending = 0;
		u->ier = v & 0x0F;
		break;
	case 2:
		if ((v ^ u->fcr) & FCR_ENABLE)
			uart_rx_clear(u);
		if (!(v & FCR_ENABLE)) {
			u->fcr = 0;
			break;
		}
		if (v & FCR_CLR_RX)
			uart_rx_clear(u);
		u->fcr = v & 0xC9;
		uart_rx_activity(u);
		break;
	case 3:
		u->lcr = v;
		break;
	case 4: {
		bool was_loop = u->mcr & MCR_LOOP;
		u->mcr = v & 0x1F;
		uart_update_msr(u);
		if (was_loop && !(u->mcr & MCR_LOOP) && u->cd)
			chardev_accept_input(u->cd);
		break;
	}
	case 5:
	case 6:
		/* LSR and MSR are read-only outside factory test. */
		break;
	case 7:
		u->scr = v;
		break;
	}
}

static uint64_t uart_io_read(void *opaque, uint64_t off, unsigned size)
{
	struct uart *u = opaque;
	uint8_t v;

	vmx_mutex_lock(&u->lock);
	v = uart_read_locked(u, (unsigned)off & 7);
	uart_update_irq(u);
	vmx_mutex_unlock(&u->lock);
	return v;
}

static void uart_io_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
	struct uart *u = opaque;

	vmx_mutex_lock(&u->lock);
	uart_write_locked(u, (unsigned)off & 7, (uint8_t)val);
	uart_update_irq(u);
	vmx_mutex_unlock(&u->lock);
}

static const struct iobus_ops uart_ops = {
	.read = uart_io_read, .write = uart_io_write, .widths = IOBUS_W1,
};

/* ---- input from the back end (loop thread) ---- */

static size_t uart_can_read(void *opaque)
{
	struct uart *u = opaque;
	size_t room;

	vmx_mutex_lock(&u->lock);
	if (u->mcr & MCR_LOOP)
		room = 0;   /* the receiver listens to the transmitter */
	else
		room = (uart_fifo_on(u) ? UART_FIFO : 1) - u->rx_count;
	vmx_mutex_unlock(&u->lock);
	return room;
}

static void uart_receive(void *opaque, const uint8_t *buf, size_t len)
{
	struct uart *u = opaque;

	vmx_mutex_lock(&u->lock);
	for (size_t i = 0; i < len; i++)
		uart_rx_push(u, buf[i]);
	uart_rx_activity(u);
	uart_update_irq(u);
	vmx_mutex_unlock(&u->lock);
}

/* ---- the vdev ---- */

static void uart_reset_locked(struct uart *u)
{
	uart_rx_clear(u);
	u->ier = 0;
	u->fcr = 0;
	u->lcr = 0;
	u->mcr = 0;
	u->lsr_err = 0;
	u->msr = 0;
	u->thre_pending = 0;
	uart_update_msr(u);
	u->msr &= 0xF0;
	uart_update_irq(u);
}

static int uart_init_port(struct vdev *dev, unsigned index, char *err, size_t errlen)
{
	struct vmx_vm *vm = dev->vm;
	struct uart *u = calloc(1, sizeof(*u));
	static const char *const names[2] = { "serial0", "serial1" };

	if (!u) {
		snprintf(err, errlen, "%s: out of memory", names[index]);
		return -1;
	}
	u->vm = vm;
	u->index = index;
	u->base = index == 0 ? PLAT_PORT_COM1 : PLAT_PORT_COM2;
	u->irq = index == 0 ? PLAT_IRQ_COM1 : PLAT_IRQ_COM2;
	u->dll = 1;
	vmx_mutex_init(&u->lock, VMX_RANK_DEVICE, names[index]);
	if (chardev_open_serial(vm, index, &u->cd, err, errlen) != 0)
		goto fail;
	if (vm->loop)
		u->timeout = vmx_timer_new(vm->loop, VMX_CLOCK_VIRTUAL, uart_timeout_cb, u);
	if (iobus_register(&vm->pio, u->base, 8, &uart_ops, u, names[index]) != 0) {
		snprintf(err, errlen, "%s: ports 0x%x-0x%x are taken", names[index], u->base, u->base + 7);
		goto fail;
	}
	if (u->cd) {
		struct chardev_frontend fe = {
			.can_read = uart_can_read, .receive = uart_receive, .opaque = u,
		};
		chardev_set_frontend(u->cd, &fe);
	}
	vmx_mutex_lock(&u->lock);
	uart_reset_locked(u);
	vmx_mutex_unlock(&u->lock);
	dev->priv = u;
	return 0;
fail:
	if (u->timeout)
		vmx_timer_free(u->timeout);
	chardev_close(u->cd);
	vmx_mutex_destroy(&u->lock);
	free(u);
	return -1;
}

static void uart_reset(struct vdev *dev)
{
	struct uart *u = dev->priv;

	vmx_mutex_lock(&u->lock);
	uart_reset_locked(u);
	vmx_mutex_unlock(&u->lock);
	if (u->cd)
		chardev_accept_input(u->cd);
}

static void uart_destroy(struct vdev *dev)
{
	struct uart *u = dev->priv;

	if (!u)
		return;
	iobus_unregister(&dev->vm->pio, u->base, u);
	chardev_close(u->cd);
	if (u->timeout)
		vmx_timer_free(u->timeout);
	vmx_mutex_destroy(&u->lock);
	free(u);
	dev->priv = NULL;
}

static bool uart_present_n(struct vmx_vm *vm, const char *key)
{
	char err[256];
	bool present = false;

	/* A bad value is reported by init, which reads the same key. */
	if (vmxcfg_get_bool(vm->cfg, key, false, &present, err, sizeof(err)) != 0)
		return true;
	return present;
}

static bool uart0_present(struct vmx_vm *vm)
{
	return uart_present_n(vm, "serial0.present");
}

static bool uart1_present(struct vmx_vm *vm)
{
	return uart_present_n(vm, "serial1.present");
}

static int uart0_init(struct vdev *dev, char *err, size_t errlen)
{
	return uart_init_port(dev, 0, err, errlen);
}

static int uart1_init(struct vdev *dev, char *err, size_t errlen)
{
	return uart_init_port(dev, 1, err, errlen);
}

static const struct vdev_class uart0_class = {
	.name = "serial0",
	.order = 40,
	.present = uart0_present,
	.init = uart0_init,
	.reset = uart_reset,
	.destroy = uart_destroy,
	.state = &uart_state,
};

static const struct vdev_class uart1_class = {
	.name = "serial1",
	.order = 40,
	.present = uart1_present,
	.init = uart1_init,
	.reset = uart_reset,
	.destroy = uart_destroy,
	.state = &uart_state,
};

VDEV_REGISTER(uart0_class)
VDEV_REGISTER(uart1_class)
