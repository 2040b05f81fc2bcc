/*
 * vmdb_glib.h — VMDB on a GLib main loop (the GUI).  Built only when
 * glib-2.0 is found (VIREO_HAVE_GLIB).  Each call adds a source to mc (NULL:
 * the default context) and returns its id for g_source_remove().  A
 * client's fd changes when it reconnects: attach the new one then.
 */
#ifndef VIREO_VMDB_GLIB_H
#define VIREO_VMDB_GLIB_H

#include <glib.h>

#include "vmdb.h"
#include "vmdb_net.h"

guint vmdb_glib_attach_ctx(struct vmdb_ctx *c, GMainContext *mc);
guint vmdb_glib_attach_client(struct vmdb_client *cl, GMainContext *mc);
guint vmdb_glib_attach_server(struct vmdb_server *s, GMainContext *mc);

#endif
