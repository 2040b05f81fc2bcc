/*
 * vcpu.h — vCPU threads: run the engine, dispatch exits through a table.
 */
#ifndef VIREO_VCPU_H
#define VIREO_VCPU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vmx_vm;
struct vmx_vcpu;

int vmx_vcpus_start(struct vmx_vm *vm, char *err, size_t errlen);
/* Make every vCPU leave its loop and join the threads (idempotent). */
void vmx_vcpus_stop(struct vmx_vm *vm);
void vmx_vcpus_log_stats(struct vmx_vm *vm);
/* Stats build: log exit counts and time per category every 10 s. */
void vmx_stats_start(struct vmx_vm *vm);

/* Device dispatch, shared by the exit handlers and the engines' sync host ops. */
void vmx_vcpu_pio(struct vmx_vcpu *vcpu, uint16_t port, unsigned size, bool write,
                  uint32_t count, uint8_t *data);
void vmx_vcpu_mmio(struct vmx_vcpu *vcpu, uint64_t gpa, unsigned size, bool write, uint8_t *data);
/* Triple fault: reset, or power off when the guest keeps faulting. */
void vmx_vcpu_shutdown(struct vmx_vm *vm, unsigned vcpu_id, const char *why);

#endif
