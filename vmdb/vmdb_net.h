/*
 * vmdb_net.h — VMDB across processes: the server (vireod's side, holds the
 * authoritative tree) and the client (a mirror of the subtrees it
 * subscribed to, writes forwarded to the server).
 *
 * Access control: the server reads each connection's SO_PEERCRED and
 * refuses any uid other than its own.  Schema `ro` paths are writable only
 * by the server's own contexts and by a peer that owns an enclosing
 * subtree; ownership is claimed in HELLO and granted by the may_own hook.
 *
 * Both halves are single-threaded state machines driven by one fd each:
 *   vmdb_server_fd()  an epoll fd (listen socket, peers, their queues)
 *   vmdb_client_fd()  the socket
 * and *_fd_cb() have vmx_fd_cb's shape for vmx_loop_add_fd().
 */
#ifndef VIREO_VMDB_NET_H
#define VIREO_VMDB_NET_H

#include "vmdb.h"
#include "vmdb_wire.h"

struct vmdb_server;
struct vmdb_client;

struct vmdb_peer_info {
	uint32_t id;
	pid_t pid;
	uid_t uid;
	const char *name;
	const char *own;     /* granted subtree or NULL */
};

struct vmdb_server_hooks {
	/* May this peer own path?  NULL: nobody may. */
	bool (*may_own)(void *opaque, const struct vmdb_peer_info *p, const char *path);
	/*
	 * Extra checks on a peer's batch after schema and access checks pass;
	 * return 0 or a negative errno and a message for the client.
	 */
	int (*validate)(void *opaque, const struct vmdb_peer_info *p,
	                const struct vmdb_op *ops, unsigned n, char *msg, size_t msglen);
	void (*peer_up)(void *opaque, const struct vmdb_peer_info *p);
	void (*peer_down)(void *opaque, const struct vmdb_peer_info *p);
};

/* Binds path (mode 0600), replacing a stale socket file. */
struct vmdb_server *vmdb_server_new(struct vmdb_db *db, const char *path,
                                    char *err, size_t errlen);
void vmdb_server_free(struct vmdb_server *s);
void vmdb_server_set_hooks(struct vmdb_server *s, const struct vmdb_server_hooks *h, void *opaque);
int vmdb_server_fd(struct vmdb_server *s);
/* Handle whatever is ready without blocking. */
void vmdb_server_dispatch(struct vmdb_server *s);
void vmdb_server_fd_cb(void *server, uint32_t events);
unsigned vmdb_server_peer_count(struct vmdb_server *s);
/* Connections refused for their uid so far. */
unsigned vmdb_server_refused(struct vmdb_server *s);
/* Limits (tests lower them): staged transaction ops per peer, output bytes. */
void vmdb_server_set_limits(struct vmdb_server *s, size_t max_staged_ops, size_t max_out_bytes);

/*
 * A client mirrors into db (an empty database of the same schema, used only
 * through this client).  name is shown in logs; own ("" or NULL: none) is the
 * subtree this process owns.
 */
struct vmdb_client *vmdb_client_new(struct vmdb_db *db, const char *sock,
                                    const char *name, const char *own);
void vmdb_client_free(struct vmdb_client *c);
/*
 * Connect, say HELLO, and resynchronise: push the owned subtree from the
 * mirror, then re-subscribe every subscription (each answered by a full
 * snapshot).  Call again after a disconnect.  -EACCES/-EPERM when refused.
 */
int vmdb_client_connect(struct vmdb_client *c);
bool vmdb_client_connected(struct vmdb_client *c);
int vmdb_client_fd(struct vmdb_client *c);
/* Read and apply what has arrived; -ENOTCONN once the connection is gone. */
int vmdb_client_dispatch(struct vmdb_client *c);
void vmdb_client_fd_cb(void *client, uint32_t events);
/* Mirror path's subtree (waits for the snapshot). */
int vmdb_client_subscribe(struct vmdb_client *c, const char *path);
int vmdb_client_unsubscribe(struct vmdb_client *c, const char *path);
/* Message of the last refused request ("" if none). */
const char *vmdb_client_error(struct vmdb_client *c);
void vmdb_client_set_timeout(struct vmdb_client *c, int ms);
/* Drop the connection (tests, shutdown); the mirror stays. */
void vmdb_client_disconnect(struct vmdb_client *c);

/*
 * Where vireod lives: $XDG_RUNTIME_DIR/vireo/ (else /tmp/vireo-$UID/),
 * created 0700 and checked to belong to us.  Returns 0 or -errno.
 */
int vmdb_runtime_dir(char *buf, size_t len);
/* <runtime dir>/vmdb.sock */
int vmdb_default_socket(char *buf, size_t len);

#endif
