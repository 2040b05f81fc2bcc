/*
 * backdoor.h — the VMware backdoor (I/O ports 0x5658 / 0x5659).
 *
 * See ../shared/spec/guest-interfaces.md section 2.  This file is the
 * command dispatcher; GuestRPC, tools and the balloon plug in here.
 */
#ifndef VIREO_BACKDOOR_H
#define VIREO_BACKDOOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vmx_vm;

#define BDOOR_MAGIC            0x564D5868u
#define BDOOR_CMD_GETMHZ       1
#define BDOOR_CMD_GETVERSION   10
#define BDOOR_CMD_GETTIME      23
#define BDOOR_CMD_GETHZ        45
#define BDOOR_CMD_GETTIMEFULL  46
#define BDOOR_CMD_GETTIMEFULL_WITH_LAG 55
#define BDOOR_VERSION          6
#define BDOOR_PRODUCT_WORKSTATION 4

int backdoor_init(struct vmx_vm *vm, char *err, size_t errlen);
void backdoor_destroy(struct vmx_vm *vm);
/* An access to a backdoor port from vCPU vcpu_id (engine registers readable). */
void backdoor_pio(struct vmx_vm *vm, unsigned vcpu_id, uint16_t port, unsigned size, bool write,
                  uint32_t count, uint8_t *data);

#endif
