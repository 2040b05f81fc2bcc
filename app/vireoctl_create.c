/*
 * vireoctl_create.c — `vireoctl create NAME ...`: a new VM folder with its .vmx.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vireoctl.h"
#include "vmx/config.h"
#include "vmx/disk/vdisk.h"

struct create_opts {
	const char *name, *dir, *kernel, *initrd, *cmdline, *engine, *disk, *iso;
	uint64_t memsize, cpus, disk_bytes;
};

/* The folder and file are named after the VM: no path tricks, nothing unprintable. */
static const char *name_problem(const char *name)
{
	if (!*name)
		return "is empty";
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return "is not a usable folder name";
	if (strlen(name) > 200)
		return "is longer than 200 bytes";
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		if (*p == '/')
			return "contains '/'";
		if (*p < 0x20 || *p == 0x7f)
			return "contains a control character";
	}
	return NULL;
}

/*
 * An absolute path to a readable regular file, or NULL after an error naming
 * it.  The kernel must also look like a bzImage, so a typo fails here rather
 * than at power-on.
 */
static char *check_file(const char *opt, const char *path, bool bzimage)
{
	char *abs = realpath(path, NULL);
	struct stat st;
	unsigned char hdr[0x206];
	ssize_t n;
	int fd;

	if (!abs) {
		vctl_error("%s %s: %s", opt, path, strerror(errno));
		return NULL;
	}
	fd = open(abs, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		vctl_error("%s %s: %s", opt, path, strerror(errno));
		free(abs);
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		vctl_error("%s %s: %s", opt, path,
		           S_ISDIR(st.st_mode) ? "is a directory, not a file" : "not a regular file");
		goto fail;
	}
	/* open() succeeds for root even without read permission; a read does not lie. */
	n = pread(fd, hdr, sizeof(hdr), 0);
	if (n < 0) {
		vctl_error("%s %s: cannot read: %s", opt, path, strerror(errno));
		goto fail;
	}
	if (bzimage && (n < (ssize_t)sizeof(hdr) || hdr[0x1FE] != 0x55 || hdr[0x1FF] != 0xAA ||
	                memcmp(hdr + 0x202, "HdrS", 4) != 0)) {
		vctl_error("%s %s: not a bzImage (no \"HdrS\" setup header)", opt, path);
		goto fail;
	}
	close(fd);
	return abs;
fail:
	close(fd);
	free(abs);
	return NULL;
}

static char *default_parent(void)
{
	const char *home = getenv("HOME");
	char *parent = NULL;

	if (!home || !*home) {
		struct passwd *pw = getpwuid(getuid());
		home = pw ? pw->pw_dir : NULL;
	}
	if (!home) {
		vctl_error("cannot find the home folder ($HOME is not set); use --dir");
		return NULL;
	}
	if (asprintf(&parent, "%s/vireo", home) < 0)
		return NULL;
	if (mkdir(parent, 0755) < 0 && errno != EEXIST) {
		vctl_error("%s: %s", parent, strerror(errno));
		free(parent);
		return NULL;
	}
	return parent;
}

static int write_vmx(const struct create_opts *o, const char *path, const char *kernel,
                     const char *initrd, const char *disk, const char *iso)
{
	char mem[32], cpus[32], err[1024];
	struct vmxcfg *c = vmxcfg_new(path);
	int r = 0;

	if (!c) {
		vctl_error("%s: out of memory", path);
		return -1;
	}
	snprintf(mem, sizeof(mem), "%llu", (unsigned long long)o->memsize);
	snprintf(cpus, sizeof(cpus), "%llu", (unsigned long long)o->cpus);
	r |= vmxcfg_set(c, ".encoding", "UTF-8");
	r |= vmxcfg_set(c, "config.version", "8");
	r |= vmxcfg_set(c, "virtualHW.version", "19");
	r |= vmxcfg_set(c, "displayName", o->name);
	r |= vmxcfg_set(c, "guestOS", "other6xlinux-64");
	r |= vmxcfg_set(c, "memsize", mem);
	r |= vmxcfg_set(c, "numvcpus", cpus);
	r |= vmxcfg_set(c, "monitor.engine", o->engine);
	r |= vmxcfg_set(c, "serial0.present", "TRUE");
	r |= vmxcfg_set(c, "serial0.fileType", "file");
	r |= vmxcfg_set(c, "serial0.fileName", "serial0.log");
	if (kernel)
		r |= vmxcfg_set(c, "linux.kernel", kernel);
	if (initrd)
		r |= vmxcfg_set(c, "linux.initrd", initrd);
	if (o->cmdline)
		r |= vmxcfg_set(c, "linux.cmdline", o->cmdline);
	/* Disks on the AHCI controller: the new disk on port 0, the ISO on port 1. */
	if (disk || iso)
		r |= vmxcfg_set(c, "sata0.present", "TRUE");
	if (disk) {
		r |= vmxcfg_set(c, "sata0:0.present", "TRUE");
		r |= vmxcfg_set(c, "sata0:0.deviceType", "disk");
		r |= vmxcfg_set(c, "sata0:0.fileName", disk);
	}
	if (iso) {
		r |= vmxcfg_set(c, "sata0:1.present", "TRUE");
		r |= vmxcfg_set(c, "sata0:1.deviceType", "cdrom-image");
		r |= vmxcfg_set(c, "sata0:1.fileName", iso);
		r |= vmxcfg_set(c, "sata0:1.startConnected", "TRUE");
	}
	if (r != 0) {
		vctl_error("%s: a value is too long for a .vmx line", path);
		vmxcfg_free(c);
		return -1;
	}
	if (vmxcfg_save(c, err, sizeof(err)) != 0) {
		vctl_error("%s", err);
		vmxcfg_free(c);
		return -1;
	}
	vmxcfg_free(c);
	return 0;
}

int vctl_cmd_create(const struct vctl_cmd *cmd, int argc, char **argv)
{
	static const char *const engines[] = {"auto", "hv", "bt"};
	struct create_opts o = {.memsize = 512, .cpus = 1, .engine = "auto"};
	char *parent = NULL, *kernel = NULL, *initrd = NULL, *folder = NULL, *vmx = NULL;
	char *iso = NULL, *disk_name = NULL, *disk_path = NULL;
	const char *why, *v = NULL;
	int status = VCTL_EXIT_FAIL;
	bool bad = false, engine_ok = false;

	for (int i = 0; i < argc;) {
		if (vctl_is_help(argv[i])) {
			vctl_print_help(cmd);
			return VCTL_EXIT_OK;
		} else if (vctl_opt(argc, argv, &i, "--dir", &v, &bad)) {
			o.dir = v;
		} else if (vctl_opt(argc, argv, &i, "--memsize", &v, &bad)) {
			if (v && !vctl_parse_u64(cmd, "--memsize", v, 4, 1048576, &o.memsize))
				return VCTL_EXIT_USAGE;
			/* vireo-vmx maps guest memory in 4 MB units. */
			if (v && o.memsize % 4)
				return vctl_usage_error(cmd, "--memsize \"%s\": not a multiple of 4 MB", v);
		} else if (vctl_opt(argc, argv, &i, "--cpus", &v, &bad)) {
			if (v && !vctl_parse_u64(cmd, "--cpus", v, 1, 64, &o.cpus))
				return VCTL_EXIT_USAGE;
		} else if (vctl_opt(argc, argv, &i, "--kernel", &v, &bad)) {
			o.kernel = v;
		} else if (vctl_opt(argc, argv, &i, "--initrd", &v, &bad)) {
			o.initrd = v;
		} else if (vctl_opt(argc, argv, &i, "--cmdline", &v, &bad)) {
			o.cmdline = v;
		} else if (vctl_opt(argc, argv, &i, "--engine", &v, &bad)) {
			o.engine = v;
		} else if (vctl_opt(argc, argv, &i, "--disk", &v, &bad)) {
			o.disk = v;
			if (v && (vdisk_parse_size(v, &o.disk_bytes) != 0 || o.disk_bytes < (1u << 20) ||
			          o.disk_bytes > (8ull << 40)))
				return vctl_usage_error(cmd, "create: --disk \"%s\": expected a size "
				                        "from 1M to 8T (\"20G\", \"512M\")", v);
		} else if (vctl_opt(argc, argv, &i, "--iso", &v, &bad)) {
			o.iso = v;
		} else if (argv[i][0] == '-' && argv[i][1] != '\0') {
			return vctl_usage_error(cmd, "create: unknown option \"%s\"", argv[i]);
		} else if (o.name) {
			return vctl_usage_error(cmd, "create: unexpected argument \"%s\"", argv[i]);
		} else {
			o.name = argv[i++];
		}
		if (bad)
			return vctl_usage_error(cmd, "create: option %s needs a value", argv[i - 1]);
	}
	if (!o.name)
		return vctl_usage_error(cmd, "create: missing NAME");
	why = name_problem(o.name);
	if (why)
		return vctl_usage_error(cmd, "create: NAME \"%s\" %s", o.name, why);
	for (size_t k = 0; k < sizeof(engines) / sizeof(engines[0]); k++)
		if (strcmp(o.engine, engines[k]) == 0)
			engine_ok = true;
	if (!engine_ok)
		return vctl_usage_error(cmd, "create: --engine \"%s\": expected auto, hv or bt", o.engine);
	if (o.initrd && !o.kernel)
		return vctl_usage_error(cmd, "create: --initrd needs --kernel");
	if (o.cmdline && !o.kernel)
		return vctl_usage_error(cmd, "create: --cmdline needs --kernel");

	if (o.kernel && !(kernel = check_file("--kernel", o.kernel, true)))
		goto out;
	if (o.initrd && !(initrd = check_file("--initrd", o.initrd, false)))
		goto out;
	if (o.iso && !(iso = check_file("--iso", o.iso, false)))
		goto out;

	if (o.dir) {
		struct stat st;
		if (stat(o.dir, &st) < 0) {
			vctl_error("--dir %s: %s", o.dir, strerror(errno));
			goto out;
		}
		if (!S_ISDIR(st.st_mode)) {
			vctl_error("--dir %s: not a folder", o.dir);
			goto out;
		}
		parent = strdup(o.dir);
	} else {
		parent = default_parent();
	}
	if (!parent)
		goto out;
	if (asprintf(&folder, "%s/%s", parent, o.name) < 0) {
		folder = NULL;
		goto out;
	}
	if (asprintf(&vmx, "%s/%s.vmx", folder, o.name) < 0) {
		vmx = NULL;
		goto out;
	}
	/* mkdir is the test-and-create: never reuse an existing folder. */
	if (mkdir(folder, 0755) < 0) {
		if (errno == EEXIST)
			vctl_error("%s: already exists; not overwriting an existing VM", folder);
		else
			vctl_error("%s: %s", folder, strerror(errno));
		goto out;
	}
	if (o.disk) {
		char err[1024];
		if (asprintf(&disk_name, "%s.vmdk", o.name) < 0 ||
		    asprintf(&disk_path, "%s/%s", folder, disk_name) < 0) {
			rmdir(folder);
			goto out;
		}
		if (vdisk_create(disk_path, VDISK_FMT_VMDK_SPARSE, o.disk_bytes, err, sizeof(err)) != 0) {
			vctl_error("--disk: %s", err);
			rmdir(folder);
			goto out;
		}
	}
	if (write_vmx(&o, vmx, kernel, initrd, disk_name, iso) != 0) {
		if (disk_path)
			unlink(disk_path);
		rmdir(folder);
		goto out;
	}
	printf("%s\n", vmx);
	status = VCTL_EXIT_OK;
out:
	free(parent);
	free(kernel);
	free(initrd);
	free(folder);
	free(vmx);
	free(iso);
	free(disk_name);
	free(disk_path);
	return status;
}
