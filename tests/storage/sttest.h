/*
 * sttest.h — helpers for the storage device tests: a devtest VM with the
 * PCI bus and one controller, BAR placement, guest-memory pointers.
 */
#ifndef VIREO_TESTS_STTEST_H
#define VIREO_TESTS_STTEST_H

#include <stddef.h>
#include <stdint.h>

#include "tests/devices/devtest.h"

/* A VM with ioapic, pci and the controller class `dev`; NULL after printing why. */
struct devtest *st_vm(const char *vmx_text, const char *dev);
/* Program 32-bit memory BAR `bar` of 00:slot.0 to addr and enable memory + bus mastering. */
void st_map_bar(struct devtest *t, unsigned slot, unsigned bar, uint32_t addr);
uint32_t st_cfg_read(struct devtest *t, unsigned slot, unsigned off, unsigned size);
/* Host pointer to guest RAM (aborts the test if it is not RAM: a test bug). */
void *st_mem(struct devtest *t, uint64_t gpa, size_t len);

#endif
