/*
 * vireoctl_vmdb.h — vireoctl's VMDB commands (through vireod).
 *
 * Each handler gets the arguments after the command name (argv[0] is the
 * first of them) and returns 0 (success), 1 (failure) or 2 (usage).  The
 * first one that needs vireod starts it when it is not running.
 *
 *   list                      registered VMs with their power state
 *   register PATH.vmx         add to the inventory; prints the new id
 *   unregister VM             remove (the VM must be off)
 *   start VM                  power on; waits until on (or says why not)
 *   stop [--hard] VM          graceful (ACPI) or immediate power off; waits
 *   reset VM
 *   status [VM]               power, reason, pid, file
 *   get PATH                  a leaf's value, or every leaf below PATH
 *   set PATH VALUE
 *   watch PATH [--count N] [--timeout SEC]   prints "PATH = VALUE" per change
 *   guestinfo VM [KEY [VALUE]]  list / print / set guestinfo.KEY (tools)
 *   balloon VM MB             balloon target in MB
 * VM is an id (as `list` shows) or the path of the .vmx.
 */
#ifndef VIREO_VIREOCTL_VMDB_H
#define VIREO_VIREOCTL_VMDB_H

int vireoctl_cmd_list(int argc, char **argv);
int vireoctl_cmd_register(int argc, char **argv);
int vireoctl_cmd_unregister(int argc, char **argv);
int vireoctl_cmd_start(int argc, char **argv);
int vireoctl_cmd_stop(int argc, char **argv);
int vireoctl_cmd_reset(int argc, char **argv);
int vireoctl_cmd_status(int argc, char **argv);
int vireoctl_cmd_get(int argc, char **argv);
int vireoctl_cmd_set(int argc, char **argv);
int vireoctl_cmd_watch(int argc, char **argv);
int vireoctl_cmd_guestinfo(int argc, char **argv);
int vireoctl_cmd_balloon(int argc, char **argv);

int vireoctl_cmd_screenshot(int argc, char **argv);   /* screenshot VM FILE.png (vnc) */

#endif
