/*
 * vmdb_glib.c — the GLib poll-loop adapter: each VMDB fd becomes a
 * GUnixFDSource whose callback is the same handler the epoll loop uses.
 */
#include <glib-unix.h>
#include <sys/epoll.h>

#include "vmdb_glib.h"

struct gsrc {
	void (*cb)(void *opaque, uint32_t events);
	void *opaque;
};

static gboolean on_fd(gint fd, GIOCondition cond, gpointer data)
{
	struct gsrc *g = data;
	uint32_t ev = 0;
	if (cond & G_IO_IN) ev |= EPOLLIN;
	if (cond & G_IO_HUP) ev |= EPOLLHUP;
	if (cond & G_IO_ERR) ev |= EPOLLERR;
	g->cb(g->opaque, ev);
	/* A client whose connection dropped has closed this fd: stop polling it. */
	return (cond & (G_IO_HUP | G_IO_ERR | G_IO_NVAL)) ? G_SOURCE_REMOVE : G_SOURCE_CONTINUE;
}

static guint attach(int fd, void (*cb)(void *, uint32_t), void *opaque, GMainContext *mc)
{
	if (fd < 0)
		return 0;
	struct gsrc *g = g_new0(struct gsrc, 1);
	g->cb = cb;
	g->opaque = opaque;
	GSource *s = g_unix_fd_source_new(fd, G_IO_IN | G_IO_HUP | G_IO_ERR);
	g_source_set_callback(s, (GSourceFunc)(void (*)(void))on_fd, g, g_free);
	guint id = g_source_attach(s, mc);
	g_source_unref(s);
	return id;
}

guint vmdb_glib_attach_ctx(struct vmdb_ctx *c, GMainContext *mc)
{
	return attach(vmdb_ctx_fd(c), vmdb_ctx_fd_cb, c, mc);
}

guint vmdb_glib_attach_client(struct vmdb_client *cl, GMainContext *mc)
{
	return attach(vmdb_client_fd(cl), vmdb_client_fd_cb, cl, mc);
}

guint vmdb_glib_attach_server(struct vmdb_server *s, GMainContext *mc)
{
	return attach(vmdb_server_fd(s), vmdb_server_fd_cb, s, mc);
}
