/*
 * pvscsi.h — the VMware paravirtual SCSI controller (15AD:07C0) at 00:10.0:
 * BAR0 is 32 KiB of MMIO registers; requests, completions and messages
 * travel through rings in guest memory set up by PVSCSI_CMD_SETUP_RINGS.
 * Targets 0-15 (not 7, the controller's own ID) come from scsi0:N in the
 * .vmx with scsi0.virtualDev = "pvscsi".  INTx on INTA.
 *
 * Register offsets and ring layouts are those of Linux's vmw_pvscsi.h,
 * restated here for the device tests.
 */
#ifndef VIREO_DEV_PVSCSI_H
#define VIREO_DEV_PVSCSI_H

#include <stdint.h>

#define PVSCSI_PCI_SLOT        16
#define PVSCSI_BAR_SIZE        (8 * 4096)
#define PVSCSI_MAX_TARGETS     16

#define PVSCSI_REG_COMMAND          0x0
#define PVSCSI_REG_COMMAND_DATA     0x4
#define PVSCSI_REG_COMMAND_STATUS   0x8
#define PVSCSI_REG_INTR_STATUS      0x100C
#define PVSCSI_REG_INTR_MASK        0x2010
#define PVSCSI_REG_KICK_NON_RW_IO   0x3014
#define PVSCSI_REG_DEBUG            0x3018
#define PVSCSI_REG_KICK_RW_IO       0x4018

#define PVSCSI_CMD_ADAPTER_RESET    1
#define PVSCSI_CMD_ISSUE_SCSI       2
#define PVSCSI_CMD_SETUP_RINGS      3
#define PVSCSI_CMD_RESET_BUS        4
#define PVSCSI_CMD_RESET_DEVICE     5
#define PVSCSI_CMD_ABORT_CMD        6
#define PVSCSI_CMD_CONFIG           7
#define PVSCSI_CMD_SETUP_MSG_RING   8
#define PVSCSI_CMD_DEVICE_UNPLUG    9
#define PVSCSI_CMD_SETUP_REQCALLTHRESHOLD 10

#define PVSCSI_INTR_CMPL_MASK       0x3u
#define PVSCSI_INTR_MSG_MASK        0xCu

#define PVSCSI_FLAG_CMD_WITH_SG_LIST 0x01u
#define PVSCSI_FLAG_CMD_DIR_NONE     0x04u
#define PVSCSI_FLAG_CMD_DIR_TOHOST   0x08u
#define PVSCSI_FLAG_CMD_DIR_TODEVICE 0x10u
#define PVSCSI_SGE_FLAG_CHAIN        0x01u

#define PVSCSI_BTSTAT_SUCCESS       0x00
#define PVSCSI_BTSTAT_DATARUN       0x12
#define PVSCSI_BTSTAT_SELTIMEO      0x11
#define PVSCSI_BTSTAT_INVPARAM      0x1A

/* Ring layouts (little-endian, packed). */
#define PVSCSI_RS_REQ_PROD    0x00
#define PVSCSI_RS_REQ_CONS    0x04
#define PVSCSI_RS_REQ_LOG2    0x08
#define PVSCSI_RS_CMP_PROD    0x0C
#define PVSCSI_RS_CMP_CONS    0x10
#define PVSCSI_RS_CMP_LOG2    0x14
#define PVSCSI_RS_MSG_PROD    0x80
#define PVSCSI_RS_MSG_CONS    0x84
#define PVSCSI_RS_MSG_LOG2    0x88
#define PVSCSI_REQ_DESC_SIZE  128
#define PVSCSI_CMP_DESC_SIZE  32
#define PVSCSI_MSG_DESC_SIZE  128
#define PVSCSI_RINGS_MAX_PAGES 32
#define PVSCSI_MSG_MAX_PAGES   16

/* Offsets inside a request descriptor. */
#define PVSCSI_REQ_CONTEXT    0
#define PVSCSI_REQ_DATA_ADDR  8
#define PVSCSI_REQ_DATA_LEN   16
#define PVSCSI_REQ_SENSE_ADDR 24
#define PVSCSI_REQ_SENSE_LEN  32
#define PVSCSI_REQ_FLAGS      36
#define PVSCSI_REQ_CDB        40
#define PVSCSI_REQ_CDB_LEN    56
#define PVSCSI_REQ_LUN        57
#define PVSCSI_REQ_TAG        65
#define PVSCSI_REQ_BUS        66
#define PVSCSI_REQ_TARGET     67

/* Offsets inside a completion descriptor. */
#define PVSCSI_CMP_CONTEXT    0
#define PVSCSI_CMP_DATA_LEN   8
#define PVSCSI_CMP_SENSE_LEN  16
#define PVSCSI_CMP_HOST_STATUS 20
#define PVSCSI_CMP_SCSI_STATUS 22

#include <stddef.h>

struct pvscsi;

/* As ahci_media_change(), for the CD-ROM at target (scsi0:target). */
int pvscsi_media_change(struct pvscsi *s, unsigned target, const char *path, char *err,
                        size_t errlen);

/* Wait until every request the controller has submitted is done (tests, fuzzing). */
void pvscsi_drain(struct pvscsi *s);

#endif
