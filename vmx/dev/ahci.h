/*
 * ahci.h — the Intel ICH9 AHCI controller (8086:2922, class 01.06.01) at
 * 00:12.0: ABAR is BAR5 (4 KiB MMIO), six ports, disks and ATAPI CD-ROMs
 * from sata0:0 .. sata0:5 in the .vmx, INTx on INTA.
 *
 * Register offsets are here for the device tests; the guest-facing layout
 * follows AHCI 1.0 (command list, received FIS area, command tables with
 * PRDTs in guest memory).  32 slots per port, NCQ (FPDMA QUEUED) on disks.
 */
#ifndef VIREO_DEV_AHCI_H
#define VIREO_DEV_AHCI_H

#include <stdint.h>

#define AHCI_PCI_SLOT     18
#define AHCI_NPORTS       6
#define AHCI_BAR_SIZE     4096

/* Global registers */
#define AHCI_CAP          0x00
#define AHCI_GHC          0x04
#define AHCI_IS           0x08
#define AHCI_PI           0x0C
#define AHCI_VS           0x10
#define AHCI_GHC_HR       0x00000001u
#define AHCI_GHC_IE       0x00000002u
#define AHCI_GHC_AE       0x80000000u

/* Port registers: 0x100 + 0x80 * port + offset */
#define AHCI_PORT(n)      (0x100u + 0x80u * (n))
#define AHCI_PxCLB        0x00
#define AHCI_PxCLBU       0x04
#define AHCI_PxFB         0x08
#define AHCI_PxFBU        0x0C
#define AHCI_PxIS         0x10
#define AHCI_PxIE         0x14
#define AHCI_PxCMD        0x18
#define AHCI_PxTFD        0x20
#define AHCI_PxSIG        0x24
#define AHCI_PxSSTS       0x28
#define AHCI_PxSCTL       0x2C
#define AHCI_PxSERR       0x30
#define AHCI_PxSACT       0x34
#define AHCI_PxCI         0x38

#define AHCI_PxCMD_ST     0x0001u
#define AHCI_PxCMD_SUD    0x0002u
#define AHCI_PxCMD_POD    0x0004u
#define AHCI_PxCMD_CLO    0x0008u
#define AHCI_PxCMD_FRE    0x0010u
#define AHCI_PxCMD_FR     0x4000u
#define AHCI_PxCMD_CR     0x8000u

#define AHCI_PxIS_DHRS    0x00000001u   /* D2H register FIS */
#define AHCI_PxIS_PSS     0x00000002u   /* PIO setup FIS */
#define AHCI_PxIS_SDBS    0x00000008u   /* set device bits FIS (NCQ completion) */
#define AHCI_PxIS_TFES    0x40000000u   /* task file error */

#define AHCI_SIG_DISK     0x00000101u
#define AHCI_SIG_ATAPI    0xEB140101u

#include <stddef.h>

struct ahci;

/*
 * Insert the image at path (relative to the VM folder; NULL: eject) into the
 * CD-ROM on port; the guest sees a media event.  Any thread but a vCPU's.
 * -1 with err when the port is no CD-ROM or the image does not open.
 */
int ahci_media_change(struct ahci *s, unsigned port, const char *path, char *err, size_t errlen);

/* Wait until every request the controller has submitted is done (tests, fuzzing). */
void ahci_drain(struct ahci *s);

#endif
