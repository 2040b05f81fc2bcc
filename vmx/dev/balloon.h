/*
 * balloon.h — the VMware memory balloon (vmw_balloon) on port 0x5670,
 * spec ../shared/spec/guest-interfaces.md section 6.
 *
 * Pages the guest locks are dropped on the host (MADV_REMOVE on the
 * memfd-backed RAM) and read back as zeroes once unlocked.  The target comes
 * from the .vmx (sched.mem.balloonTarget, MB) and from VMDB
 * (/vm/<id>/request/balloon_mb); the state is published under
 * /vm/<id>/guest/balloon/.
 *
 * The core works on a struct gmem alone, so tests, benchmarks and the
 * fuzzer drive it without a VM.
 */
#ifndef VIREO_BALLOON_H
#define VIREO_BALLOON_H

#include <stdbool.h>
#include <stdint.h>

#define BALLOON_PORT   0x5670
#define BALLOON_MAGIC  0x456C6D6Fu

#define BALLOON_CMD_START            0
#define BALLOON_CMD_GET_TARGET       1
#define BALLOON_CMD_LOCK             2
#define BALLOON_CMD_UNLOCK           3
#define BALLOON_CMD_GUEST_ID         4
#define BALLOON_CMD_BATCHED_LOCK     6
#define BALLOON_CMD_BATCHED_UNLOCK   7
#define BALLOON_CMD_BATCHED_2M_LOCK  8
#define BALLOON_CMD_BATCHED_2M_UNLOCK 9
#define BALLOON_CMD_VMCI_DOORBELL_SET 10

#define BALLOON_CAP_BASIC      0x02u
#define BALLOON_CAP_BATCHED    0x04u
#define BALLOON_CAP_BATCHED_2M 0x08u
#define BALLOON_CAP_SIGNALLED  0x10u
#define BALLOON_CAP_64BIT      0x20u

#define BALLOON_SUCCESS        0
#define BALLOON_ERR_CMD        1
#define BALLOON_ERR_PPN        2
#define BALLOON_ERR_LOCKED     3
#define BALLOON_ERR_UNLOCKED   4
#define BALLOON_ERR_RESET      7
#define BALLOON_SUCCESS_CAPS   0x03000000u

#define BALLOON_BATCH_MAX      512

struct gmem;
struct balloon;

/* One IN on the port: eax/ecx/rbx/rsi in; eax (status), ecx, rbx out. */
struct balloon_regs {
	uint32_t eax, ecx;
	uint64_t rbx, rsi;
};

struct balloon *balloon_core_new(struct gmem *mem);
void balloon_core_free(struct balloon *b);
void balloon_core_cmd(struct balloon *b, struct balloon_regs *r);
/* The host's target in 4 KiB pages (clamped to the guest's limit when answered). */
void balloon_core_set_target(struct balloon *b, uint64_t pages);
uint64_t balloon_core_target(const struct balloon *b);
/* Pages the guest holds locked now. */
uint64_t balloon_core_size(const struct balloon *b);
bool balloon_core_connected(const struct balloon *b);
/* Guest reset: every page counts as released; the guest must START again. */
void balloon_core_reset(struct balloon *b);

#endif
