/*
 * scsi.h — the SCSI target shared by the ATAPI CD-ROM (AHCI PACKET command)
 * and PVSCSI: a disk (SBC) and a CD-ROM (MMC), plus what both transports
 * need around it: media with reference counts, guest scatter/gather lists
 * turned into iovecs, and the storage config keys (sataN:M.*, scsiN:M.*).
 *
 * scsi_exec() decodes one CDB: it either answers at once from a small
 * buffer (INQUIRY, MODE SENSE ...), or asks the transport to move blocks
 * between the media and the guest (READ/WRITE) or to flush.  The transport
 * does the I/O on dio.h workers and calls scsi_complete() with the result.
 *
 * A scsi_dev is not locked here: its transport serialises calls to it under
 * its own device lock (media changes from the loop thread included).
 */
#ifndef VIREO_DEV_SCSI_H
#define VIREO_DEV_SCSI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct vdisk;
struct gmem;
struct vmx_vm;

#define SCSI_STATUS_GOOD   0x00
#define SCSI_STATUS_CHECK  0x02

#define SCSI_SENSE_NONE            0x0
#define SCSI_SENSE_NOT_READY       0x2
#define SCSI_SENSE_MEDIUM_ERROR    0x3
#define SCSI_SENSE_ILLEGAL_REQUEST 0x5
#define SCSI_SENSE_UNIT_ATTENTION  0x6
#define SCSI_SENSE_DATA_PROTECT    0x7
#define SCSI_SENSE_ABORTED_COMMAND 0xB

#define SCSI_SENSE_LEN   18
#define SCSI_BUF_MAX     512     /* the largest immediate answer */
#define SCSI_MAX_XFER    (64u << 20)   /* bytes per READ/WRITE command */

enum scsi_kind { SCSI_DISK, SCSI_CDROM };

enum scsi_xfer {
	SCSI_XFER_NONE,    /* status only */
	SCSI_XFER_IN,      /* r->buf[0..len) goes to the guest */
	SCSI_XFER_READ,    /* media [offset, offset+len) to the guest */
	SCSI_XFER_WRITE,   /* guest to media */
	SCSI_XFER_FLUSH,
};

/* An open image; requests in flight hold a reference across an eject. */
struct scsi_media {
	struct vdisk *disk;
	unsigned refs;     /* atomic */
	bool read_only;
	char path[512];
};

struct scsi_media *scsi_media_open(const char *path, bool cdrom, bool read_only,
                                   char *err, size_t errlen);
struct scsi_media *scsi_media_get(struct scsi_media *m);
void scsi_media_put(struct scsi_media *m);   /* closes the image at the last one */

struct scsi_dev {
	enum scsi_kind kind;
	struct scsi_media *media;   /* NULL: no medium (CD-ROM) */
	unsigned block_size;        /* 512 disk, 2048 CD-ROM */
	uint64_t nblocks;
	char serial[21];
	char product[17];
	/* Sense of the last CHECK CONDITION, for REQUEST SENSE (ATAPI). */
	uint8_t sense_key, asc, ascq;
	/* CD-ROM */
	bool tray_open, locked, unit_attention;
	uint8_t media_event;        /* GET EVENT STATUS: pending media event code */
};

struct scsi_req {
	enum scsi_xfer xfer;
	uint8_t status;
	uint64_t offset, len;       /* bytes (READ/WRITE), len also for IN */
	struct scsi_media *media;   /* a reference for READ/WRITE/FLUSH */
	uint8_t sense[SCSI_SENSE_LEN];
	uint8_t buf[SCSI_BUF_MAX];
};

void scsi_dev_init(struct scsi_dev *d, enum scsi_kind kind, const char *product,
                   const char *serial);
/* Insert (m != NULL, takes the reference) or remove the medium; a CD-ROM sees a media event. */
void scsi_dev_set_media(struct scsi_dev *d, struct scsi_media *m);
/* Bus or device reset: sense and unit attention cleared, lock released. */
void scsi_dev_reset(struct scsi_dev *d);

/*
 * Decode and run one CDB for `lun` (a LUN other than 0 has no device).
 * Fills r; on CHECK CONDITION r->sense holds fixed-format sense data.
 */
void scsi_exec(struct scsi_dev *d, const uint8_t *cdb, size_t cdb_len, unsigned lun,
               struct scsi_req *r);
/* The transport finished r's I/O with ret (0 or -errno): status, sense, media reference. */
void scsi_complete(struct scsi_dev *d, struct scsi_req *r, int ret);
/* Set r to CHECK CONDITION with this sense (also remembered for REQUEST SENSE). */
void scsi_check(struct scsi_dev *d, struct scsi_req *r, uint8_t key, uint8_t asc, uint8_t ascq);

/* ---- guest scatter/gather lists ---- */

struct scsi_sg {
	struct iovec *iov;
	int n, cap;
	uint64_t total;
};

void scsi_sg_init(struct scsi_sg *sg);
void scsi_sg_free(struct scsi_sg *sg);
/* Append guest-physical [gpa, gpa+len); -1 when it is not RAM or the list is too long. */
int scsi_sg_add(struct scsi_sg *sg, const struct gmem *mem, uint64_t gpa, uint64_t len);
/* Drop everything past len bytes. */
void scsi_sg_trim(struct scsi_sg *sg, uint64_t len);
/* Copy buf into the list; returns the bytes copied (min of both lengths). */
uint64_t scsi_sg_copy_in(struct scsi_sg *sg, const void *buf, uint64_t len);

/* ---- config: sataN:M.* / scsiN:M.* ---- */

enum scsi_cfg_type { SCSI_CFG_NONE, SCSI_CFG_DISK, SCSI_CFG_CDROM };

/*
 * Reads PREFIX.present, .deviceType, .fileName, .startConnected, .readOnly
 * (PREFIX is "sata0:1") and opens the image relative to the VM folder.
 * *type NONE: the unit is absent.  A CD-ROM may come back with *media NULL
 * (not connected, or no file).  Returns -1 with err naming the key or file.
 */
int scsi_cfg_unit(struct vmx_vm *vm, const char *prefix, enum scsi_cfg_type *type,
                  struct scsi_media **media, char *err, size_t errlen);
/* An image path from a .vmx value or a VMDB request: absolute, or relative to the VM folder. */
void scsi_cfg_path(struct vmx_vm *vm, const char *name, char *out, size_t outlen);

struct vmx_mutex;
/*
 * Media change on a CD-ROM unit (both controllers): open path (NULL ejects)
 * relative to the VM folder and swap it in under the controller's lock.
 * unit_name ("sata0:1") is for the log.  Returns -1 with err on a bad image.
 */
int scsi_media_change(struct vmx_vm *vm, struct vmx_mutex *lock, struct scsi_dev *d,
                      const char *unit_name, const char *path, char *err, size_t errlen);
/*
 * Parse a VMDB request/media value "BUS:N eject" or "BUS:N insert PATH" for
 * bus ("sata0", "scsi0").  Returns 0 with *unit and *path (NULL: eject),
 * 1 when the value names another bus, -1 when it is malformed.
 */
int scsi_media_request_parse(const char *value, const char *bus, unsigned *unit,
                             const char **path);
/* The controller's PREFIX.present key, as VMware reads booleans. */
bool scsi_cfg_present(struct vmx_vm *vm, const char *key);

#endif
