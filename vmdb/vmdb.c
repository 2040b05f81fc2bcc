/*
 * vmdb.c — the schema, the tree, contexts, watches and transactions.
 *
 * One mutex per database guards the tree, every context's notification
 * queue and watch list; callbacks run outside it.  Nodes are found through
 * one hash table keyed by (parent, name), so a path costs one probe per
 * component and no node stores its full path.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vmdb_int.h"

/* ---------------------------------------------------------------- schema */

struct snode {
	char *name;
	enum vmdb_type type;       /* NONE: interior */
	bool ro;
	bool is_array;             /* this node is a `#` element */
	char **choices;
	unsigned nchoices;
	struct snode *parent, *child, *next;
	struct snode *array;       /* the `#` child, when this node is an array */
};

struct vmdb_schema {
	struct snode root;
	uint32_t hash;
};

static void snode_free(struct snode *n)
{
	struct snode *c = n->child;
	while (c) {
		struct snode *nx = c->next;
		snode_free(c);
		free(c);
		c = nx;
	}
	for (unsigned i = 0; i < n->nchoices; i++)
		free(n->choices[i]);
	free(n->choices);
	free(n->name);
}

void vmdb_schema_free(struct vmdb_schema *s)
{
	if (!s)
		return;
	snode_free(&s->root);
	free(s);
}

static bool is_index(const char *c, size_t n)
{
	if (n == 0 || n > 9 || (n > 1 && c[0] == '0'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (c[i] < '0' || c[i] > '9')
			return false;
	return true;
}

/* Schema child of sn for component comp (length n), or NULL. */
static const struct snode *schild(const struct snode *sn, const char *comp, size_t n)
{
	if (sn->array)
		return is_index(comp, n) ? sn->array : NULL;
	for (const struct snode *c = sn->child; c; c = c->next)
		if (strlen(c->name) == n && !memcmp(c->name, comp, n))
			return c;
	return NULL;
}

static uint32_t fnv(const void *p, size_t n, uint32_t h)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 16777619u;
	return h;
}

static int schema_line(struct vmdb_schema *s, char *line, char *err, size_t errlen, unsigned lno)
{
	char *tok[4] = { 0 }, *save = NULL;
	unsigned nt = 0;
	for (char *t = strtok_r(line, " \t\r", &save); t; t = strtok_r(NULL, " \t\r", &save)) {
		if (t[0] == '#')
			break;
		if (nt == 4) {
			snprintf(err, errlen, "schema:%u: too many fields", lno);
			return -EINVAL;
		}
		tok[nt++] = t;
	}
	if (nt == 0)
		return 0;
	if (nt < 3) {
		snprintf(err, errlen, "schema:%u: expected PATH TYPE ACCESS", lno);
		return -EINVAL;
	}
	enum vmdb_type type;
	if (!strcmp(tok[1], "string")) type = VMDB_T_STRING;
	else if (!strcmp(tok[1], "int")) type = VMDB_T_INT;
	else if (!strcmp(tok[1], "bool")) type = VMDB_T_BOOL;
	else if (!strcmp(tok[1], "enum")) type = VMDB_T_ENUM;
	else {
		snprintf(err, errlen, "schema:%u: unknown type '%s'", lno, tok[1]);
		return -EINVAL;
	}
	if (strcmp(tok[2], "ro") && strcmp(tok[2], "rw")) {
		snprintf(err, errlen, "schema:%u: access must be ro or rw", lno);
		return -EINVAL;
	}
	if ((type == VMDB_T_ENUM) != (nt == 4)) {
		snprintf(err, errlen, "schema:%u: choices go with enum, and only with enum", lno);
		return -EINVAL;
	}
	const char *path = tok[0];
	size_t plen = strlen(path);
	if (path[0] != '/' || plen < 2 || plen >= VMDB_PATH_MAX) {
		snprintf(err, errlen, "schema:%u: bad path '%s'", lno, path);
		return -EINVAL;
	}
	struct snode *cur = &s->root;
	const char *p = path + 1;
	unsigned depth = 0;
	while (*p) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		bool arr = n == 1 && p[0] == '#';
		bool ok = n > 0 && n < VMDB_NAME_MAX && ++depth <= VMDB_DEPTH_MAX;
		for (size_t i = 0; ok && !arr && i < n; i++) {
			char ch = p[i];
			ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			     (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '.';
		}
		if (!ok || cur->type != VMDB_T_NONE) {
			snprintf(err, errlen, "schema:%u: bad path '%s'", lno, path);
			return -EINVAL;
		}
		struct snode *c = NULL;
		if (arr) {
			c = cur->array;
		} else {
			for (c = cur->child; c && !(strlen(c->name) == n && !memcmp(c->name, p, n)); c = c->next)
				;
		}
		if ((arr && cur->child && !cur->array) || (!arr && cur->array)) {
			snprintf(err, errlen, "schema:%u: '%s' mixes an array with named children", lno, path);
			return -EINVAL;
		}
		bool last = !e || !e[1];
		if (c && last) {
			snprintf(err, errlen, "schema:%u: '%s' declared twice", lno, path);
			return -EINVAL;
		}
		if (!c) {
			c = calloc(1, sizeof(*c));
			if (!c)
				return -ENOMEM;
			c->name = strndup(p, n);
			c->is_array = arr;
			c->parent = cur;
			/* Append: the schema's order is the order of `list`. */
			struct snode **pp = &cur->child;
			while (*pp)
				pp = &(*pp)->next;
			*pp = c;
			if (arr)
				cur->array = c;
		}
		cur = c;
		if (!e)
			break;
		p = e + 1;
		if (!*p)
			break;
	}
	if (cur->child) {
		snprintf(err, errlen, "schema:%u: '%s' is already an interior node", lno, path);
		return -EINVAL;
	}
	if (cur->is_array) {
		snprintf(err, errlen, "schema:%u: '%s': an array element must be a node", lno, path);
		return -EINVAL;
	}
	cur->type = type;
	cur->ro = !strcmp(tok[2], "ro");
	if (type == VMDB_T_ENUM) {
		char *save2 = NULL;
		for (char *c = strtok_r(tok[3], ",", &save2); c; c = strtok_r(NULL, ",", &save2)) {
			if (cur->nchoices == 65535)
				return -EINVAL;
			char **nc = realloc(cur->choices, (cur->nchoices + 1) * sizeof(*nc));
			if (!nc)
				return -ENOMEM;
			cur->choices = nc;
			cur->choices[cur->nchoices++] = strdup(c);
		}
		if (!cur->nchoices) {
			snprintf(err, errlen, "schema:%u: enum without choices", lno);
			return -EINVAL;
		}
	}
	for (unsigned i = 0; i < nt; i++) {
		s->hash = fnv(tok[i], strlen(tok[i]), s->hash);
		s->hash = fnv(" ", 1, s->hash);
	}
	s->hash = fnv("\n", 1, s->hash);
	return 0;
}

struct vmdb_schema *vmdb_schema_parse(const char *text, size_t len, char *err, size_t errlen)
{
	struct vmdb_schema *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->hash = 2166136261u;
	s->root.name = strdup("");
	size_t pos = 0;
	unsigned lno = 0;
	char line[1024];
	while (pos < len) {
		lno++;
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
		if (n >= sizeof(line) || memchr(text + pos, 0, n)) {
			snprintf(err, errlen, "schema:%u: line too long or contains NUL", lno);
			vmdb_schema_free(s);
			return NULL;
		}
		memcpy(line, text + pos, n);
		line[n] = 0;
		pos += n + (nl ? 1 : 0);
		if (schema_line(s, line, err, errlen, lno)) {
			vmdb_schema_free(s);
			return NULL;
		}
	}
	return s;
}

static struct vmdb_schema *builtin_schema;
static pthread_once_t builtin_once = PTHREAD_ONCE_INIT;

static void builtin_init(void)
{
	char err[256];
	builtin_schema = vmdb_schema_parse(vmdb_schema_text, strlen(vmdb_schema_text), err, sizeof(err));
	if (!builtin_schema) {
		/* The build compiled a broken schema.txt: nothing can work. */
		fprintf(stderr, "vmdb: built-in schema: %s\n", err);
		abort();
	}
}

const struct vmdb_schema *vmdb_schema_builtin(void)
{
	pthread_once(&builtin_once, builtin_init);
	return builtin_schema;
}

uint32_t vmdb_schema_hash(const struct vmdb_schema *s)
{
	return s->hash;
}

/* Schema node of a canonical absolute path, or NULL. */
static const struct snode *sresolve(const struct vmdb_schema *s, const char *path)
{
	const struct snode *sn = &s->root;
	const char *p = path + 1;
	while (*p) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		sn = schild(sn, p, n);
		if (!sn)
			return NULL;
		if (!e)
			break;
		p = e + 1;
	}
	return sn;
}

int vmdb_schema_lookup(const struct vmdb_schema *s, const char *path, enum vmdb_type *type,
                       bool *ro, const char *const **choices, unsigned *nchoices)
{
	if (!path || vmdb_wire_check_path(path, strlen(path)))
		return -EINVAL;
	const struct snode *sn = sresolve(s, path);
	if (!sn)
		return -EINVAL;
	if (type) *type = sn->type;
	if (ro) *ro = sn->ro;
	if (choices) *choices = (const char *const *)sn->choices;
	if (nchoices) *nchoices = sn->nchoices;
	return 0;
}

/* ---------------------------------------------------------------- tree */

struct node {
	struct node *parent, *hnext, *child, *tail, *prev, *next;
	const struct snode *s;
	union {
		int64_t i;
		char *str;
	} v;
	uint32_t hash;
	uint8_t namelen;
	char name[];
};

struct watch {
	struct watch *next;
	int id;
	bool dead;
	size_t plen;
	vmdb_watch_cb cb;
	void *opaque;
	char path[VMDB_PATH_MAX];
};

struct pend {
	struct pend *prev, *next, *hnext;
	uint32_t hash;
	struct vmdb_op op;
	char path[];
};

struct vmdb_ctx {
	struct vmdb_db *db;
	struct vmdb_ctx *prev, *next;
	struct vmdb_ident id;
	char *own;
	char cwd[VMDB_PATH_MAX];
	int efd;
	bool signaled, touched;
	struct watch *watches;
	int next_wid;
	struct pend *qhead, *qtail;
	struct pend **qht;
	size_t qmask, qcount;
	bool in_txn;
	struct vmdb_op *txn;
	unsigned ntxn, captxn;
};

struct vmdb_db {
	pthread_mutex_t lock;
	const struct vmdb_schema *schema;
	struct node *root;
	struct node **ht;
	size_t hmask, count;
	struct vmdb_ctx *ctxs;
	unsigned nwatch;
	const struct vmdb_remote_ops *rops;
	void *remote;
};

static uint32_t nhash(const struct node *parent, const char *name, size_t n)
{
	uintptr_t p = (uintptr_t)parent;
	return fnv(name, n, 2166136261u ^ (uint32_t)(p >> 4) ^ (uint32_t)((uint64_t)p >> 32));
}

static struct node *node_find(struct vmdb_db *db, struct node *parent, const char *name, size_t n)
{
	uint32_t h = nhash(parent, name, n);
	for (struct node *x = db->ht[h & db->hmask]; x; x = x->hnext)
		if (x->hash == h && x->parent == parent && x->namelen == n && !memcmp(x->name, name, n))
			return x;
	return NULL;
}

static void ht_grow(struct vmdb_db *db)
{
	size_t nsize = (db->hmask + 1) * 2;
	struct node **nt = calloc(nsize, sizeof(*nt));
	if (!nt)
		return; /* keep the longer chains */
	for (size_t i = 0; i <= db->hmask; i++) {
		struct node *x = db->ht[i];
		while (x) {
			struct node *nx = x->hnext;
			x->hnext = nt[x->hash & (nsize - 1)];
			nt[x->hash & (nsize - 1)] = x;
			x = nx;
		}
	}
	free(db->ht);
	db->ht = nt;
	db->hmask = nsize - 1;
}

static struct node *node_new(struct vmdb_db *db, struct node *parent, const struct snode *s,
                             const char *name, size_t n)
{
	struct node *x = calloc(1, sizeof(*x) + n + 1);
	if (!x)
		abort();
	memcpy(x->name, name, n);
	x->namelen = (uint8_t)n;
	x->s = s;
	x->parent = parent;
	x->hash = nhash(parent, name, n);
	x->hnext = db->ht[x->hash & db->hmask];
	db->ht[x->hash & db->hmask] = x;
	x->prev = parent->tail;
	if (parent->tail)
		parent->tail->next = x;
	else
		parent->child = x;
	parent->tail = x;
	if (++db->count > db->hmask + 1)
		ht_grow(db);
	return x;
}

static void node_free_rec(struct vmdb_db *db, struct node *x)
{
	struct node *c = x->child;
	while (c) {
		struct node *nx = c->next;
		node_free_rec(db, c);
		c = nx;
	}
	struct node **pp = &db->ht[x->hash & db->hmask];
	while (*pp && *pp != x)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = x->hnext;
	if (x->s->type == VMDB_T_STRING)
		free(x->v.str);
	db->count--;
	free(x);
}

static void node_unlink(struct vmdb_db *db, struct node *x)
{
	struct node *p = x->parent;
	if (x->prev) x->prev->next = x->next; else p->child = x->next;
	if (x->next) x->next->prev = x->prev; else p->tail = x->prev;
	node_free_rec(db, x);
}

/* Walk a canonical path; create missing nodes when create.  NULL if absent. */
static struct node *node_lookup(struct vmdb_db *db, const char *path, bool create)
{
	struct node *cur = db->root;
	const char *p = path + 1;
	while (*p) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		struct node *x = node_find(db, cur, p, n);
		if (!x) {
			if (!create)
				return NULL;
			const struct snode *sn = schild(cur->s, p, n);
			if (!sn)
				return NULL;
			x = node_new(db, cur, sn, p, n);
		}
		cur = x;
		if (!e)
			break;
		p = e + 1;
	}
	return cur;
}

static void node_value(const struct node *x, struct vmdb_value *v)
{
	v->type = x->s->type;
	v->i = 0;
	v->s = NULL;
	switch (x->s->type) {
	case VMDB_T_STRING: v->s = x->v.str; break;
	case VMDB_T_ENUM: v->i = x->v.i; v->s = x->s->choices[x->v.i]; break;
	default: v->i = x->v.i; break;
	}
}

struct vmdb_db *vmdb_db_new(const struct vmdb_schema *s)
{
	struct vmdb_db *db = calloc(1, sizeof(*db));
	if (!db)
		return NULL;
	pthread_mutex_init(&db->lock, NULL);
	db->schema = s;
	db->hmask = 1023;
	db->ht = calloc(db->hmask + 1, sizeof(*db->ht));
	db->root = calloc(1, sizeof(*db->root) + 1);
	if (!db->ht || !db->root) {
		free(db->ht);
		free(db->root);
		free(db);
		return NULL;
	}
	db->root->s = &s->root;
	return db;
}

void vmdb_db_free(struct vmdb_db *db)
{
	if (!db)
		return;
	while (db->ctxs)
		vmdb_ctx_free(db->ctxs);
	struct node *c = db->root->child;
	while (c) {
		struct node *nx = c->next;
		node_free_rec(db, c);
		c = nx;
	}
	free(db->root);
	free(db->ht);
	pthread_mutex_destroy(&db->lock);
	free(db);
}

const struct vmdb_schema *vmdb_db_schema(const struct vmdb_db *db)
{
	return db->schema;
}

size_t vmdb_db_node_count(struct vmdb_db *db)
{
	pthread_mutex_lock(&db->lock);
	size_t n = db->count;
	pthread_mutex_unlock(&db->lock);
	return n;
}

void vmdb_db_set_remote(struct vmdb_db *db, const struct vmdb_remote_ops *ops, void *remote)
{
	pthread_mutex_lock(&db->lock);
	db->rops = ops;
	db->remote = remote;
	pthread_mutex_unlock(&db->lock);
}

/* ---------------------------------------------------------------- ops */

int vmdb_op_copy(struct vmdb_op *dst, const struct vmdb_op *src)
{
	*dst = *src;
	dst->path = strdup(src->path);
	dst->v.s = NULL;
	if (src->kind == VMDB_OP_SET && src->v.type == VMDB_T_STRING)
		dst->v.s = strdup(src->v.s ? src->v.s : "");
	else if (src->kind == VMDB_OP_SET && src->v.type == VMDB_T_ENUM)
		dst->v.s = src->v.s; /* points into the schema */
	if (!dst->path || (src->kind == VMDB_OP_SET && src->v.type == VMDB_T_STRING && !dst->v.s)) {
		vmdb_op_clear(dst);
		return -ENOMEM;
	}
	return 0;
}

void vmdb_op_clear(struct vmdb_op *op)
{
	free(op->path);
	if (op->kind == VMDB_OP_SET && op->v.type == VMDB_T_STRING)
		free((char *)op->v.s);
	memset(op, 0, sizeof(*op));
}

void vmdb_ops_free(struct vmdb_op *ops, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		vmdb_op_clear(&ops[i]);
	free(ops);
}

static bool within(const char *path, const char *root, size_t rlen)
{
	if (rlen == 1)
		return true;
	return !strncmp(path, root, rlen) && (path[rlen] == 0 || path[rlen] == '/');
}

/* Checks of one op whose path resolved to sn (NULL: not in the schema). */
static int check_op_sn(const struct snode *sn, const struct vmdb_op *op,
                       const struct vmdb_ident *id, bool force)
{
	if (!sn)
		return -EINVAL;
	if (op->kind == VMDB_OP_SET) {
		if (sn->type == VMDB_T_NONE)
			return -EISDIR;
		if (op->v.type != sn->type)
			return -EINVAL;
		if (sn->type == VMDB_T_ENUM && (op->v.i < 0 || op->v.i >= sn->nchoices))
			return -EINVAL;
		if (sn->type == VMDB_T_BOOL && op->v.i != 0 && op->v.i != 1)
			return -EINVAL;
		if (sn->type == VMDB_T_STRING && (!op->v.s || strlen(op->v.s) > VMDB_STRING_MAX))
			return -EINVAL;
	} else if (op->kind != VMDB_OP_DEL) {
		return -EINVAL;
	}
	if (force || !id || id->local)
		return 0;
	/* Clients may set rw leaves and delete rw leaves; the rest is the owner's. */
	if (sn->type != VMDB_T_NONE && !sn->ro)
		return 0;
	if (id->own && id->own[0] && within(op->path, id->own, strlen(id->own)))
		return 0;
	return -EACCES;
}

static int check_op(const struct vmdb_db *db, const struct vmdb_op *op,
                    const struct vmdb_ident *id, bool force)
{
	if (!op->path || vmdb_wire_check_path(op->path, strlen(op->path)))
		return -EINVAL;
	return check_op_sn(sresolve(db->schema, op->path), op, id, force);
}

static void ctx_signal(struct vmdb_ctx *c)
{
	if (!c->signaled) {
		uint64_t one = 1;
		c->signaled = true;
		if (write(c->efd, &one, sizeof(one)) < 0) {
			/* The counter cannot overflow: it is drained on every dispatch. */
		}
	}
}

static void q_grow(struct vmdb_ctx *c)
{
	size_t nsize = c->qmask ? (c->qmask + 1) * 2 : 64;
	struct pend **nt = calloc(nsize, sizeof(*nt));
	if (!nt)
		abort();
	for (struct pend *p = c->qhead; p; p = p->next) {
		p->hnext = nt[p->hash & (nsize - 1)];
		nt[p->hash & (nsize - 1)] = p;
	}
	free(c->qht);
	c->qht = nt;
	c->qmask = nsize - 1;
}

/* Queue (or merge) one change on c; caller holds the db lock. */
static void enqueue(struct vmdb_ctx *c, const char *path, size_t plen, const struct node *x)
{
	if (c->qcount + 1 > (c->qmask + 1) / 2 || !c->qht)
		q_grow(c);
	uint32_t h = fnv(path, plen, 2166136261u);
	struct pend *p;
	for (p = c->qht[h & c->qmask]; p; p = p->hnext)
		if (p->hash == h && !strcmp(p->path, path))
			break;
	if (p) {
		if (p->op.kind == VMDB_OP_SET && p->op.v.type == VMDB_T_STRING)
			free((char *)p->op.v.s);
		/* Move to the tail: the queue is in order of each path's last change. */
		if (p != c->qtail) {
			if (p->prev) p->prev->next = p->next; else c->qhead = p->next;
			p->next->prev = p->prev;
			p->prev = c->qtail;
			p->next = NULL;
			c->qtail->next = p;
			c->qtail = p;
		}
	} else {
		p = calloc(1, sizeof(*p) + plen + 1);
		if (!p)
			abort();
		memcpy(p->path, path, plen + 1);
		p->hash = h;
		p->op.path = p->path;
		p->hnext = c->qht[h & c->qmask];
		c->qht[h & c->qmask] = p;
		p->prev = c->qtail;
		if (c->qtail) c->qtail->next = p; else c->qhead = p;
		c->qtail = p;
		c->qcount++;
	}
	memset(&p->op.v, 0, sizeof(p->op.v));
	if (x) {
		p->op.kind = VMDB_OP_SET;
		node_value(x, &p->op.v);
		if (p->op.v.type == VMDB_T_STRING) {
			p->op.v.s = strdup(p->op.v.s);
			if (!p->op.v.s)
				abort();
		}
	} else {
		p->op.kind = VMDB_OP_DEL;
	}
	c->touched = true;
}

static void notify(struct vmdb_db *db, const char *path, const struct node *x)
{
	size_t plen = strlen(path);
	for (struct vmdb_ctx *c = db->ctxs; c; c = c->next) {
		for (struct watch *w = c->watches; w; w = w->next) {
			if (w->dead)
				continue;
			/* A delete also reaches watches inside the deleted subtree. */
			if (within(path, w->path, w->plen) || (!x && within(w->path, path, plen))) {
				enqueue(c, path, plen, x);
				break;
			}
		}
	}
}

static void apply_checked(struct vmdb_db *db, const struct vmdb_op *ops, unsigned n);

int vmdb_db_apply(struct vmdb_db *db, const struct vmdb_op *ops, unsigned n,
                  const struct vmdb_ident *id, bool force, unsigned *bad)
{
	for (unsigned i = 0; i < n; i++) {
		int rc = check_op(db, &ops[i], id, force);
		if (rc) {
			if (bad)
				*bad = i;
			return rc;
		}
	}
	apply_checked(db, ops, n);
	return 0;
}

/* Apply ops that passed check_op; takes the lock. */
static void apply_checked(struct vmdb_db *db, const struct vmdb_op *ops, unsigned n)
{
	pthread_mutex_lock(&db->lock);
	for (unsigned i = 0; i < n; i++) {
		const struct vmdb_op *op = &ops[i];
		if (op->kind == VMDB_OP_SET) {
			struct node *x = node_lookup(db, op->path, true);
			const struct snode *sn = x->s;
			if (sn->type == VMDB_T_STRING) {
				char *s = strdup(op->v.s);
				if (!s)
					abort();
				free(x->v.str);
				x->v.str = s;
			} else {
				x->v.i = op->v.i;
			}
			if (db->nwatch)
				notify(db, op->path, x);
		} else {
			struct node *x = node_lookup(db, op->path, false);
			if (!x)
				continue;
			if (x == db->root) {
				while (x->child)
					node_unlink(db, x->child);
			} else {
				node_unlink(db, x);
			}
			if (db->nwatch)
				notify(db, op->path, NULL);
		}
	}
	/* Signal once per context, after the whole batch is queued. */
	if (db->nwatch)
		for (struct vmdb_ctx *c = db->ctxs; c; c = c->next)
			if (c->touched) {
				c->touched = false;
				ctx_signal(c);
			}
	pthread_mutex_unlock(&db->lock);
}

struct snap {
	struct vmdb_op *ops;
	unsigned n, cap;
	int err;
};

static void snap_rec(struct snap *sp, const struct node *x, char *path, size_t plen)
{
	if (sp->err)
		return;
	if (x->s->type != VMDB_T_NONE) {
		if (sp->n == sp->cap) {
			unsigned ncap = sp->cap ? sp->cap * 2 : 64;
			struct vmdb_op *no = realloc(sp->ops, ncap * sizeof(*no));
			if (!no) {
				sp->err = -ENOMEM;
				return;
			}
			sp->ops = no;
			sp->cap = ncap;
		}
		struct vmdb_op tmp = { .kind = VMDB_OP_SET, .path = path };
		node_value(x, &tmp.v);
		if (vmdb_op_copy(&sp->ops[sp->n], &tmp)) {
			sp->err = -ENOMEM;
			return;
		}
		sp->n++;
		return;
	}
	for (const struct node *c = x->child; c; c = c->next) {
		size_t n = plen + 1 + c->namelen;
		if (n >= VMDB_PATH_MAX)
			continue;
		path[plen] = '/';
		memcpy(path + plen + 1, c->name, c->namelen);
		path[n] = 0;
		snap_rec(sp, c, path, n);
		path[plen] = 0;
	}
}

int vmdb_db_snapshot(struct vmdb_db *db, const char *path, struct vmdb_op **ops, unsigned *n)
{
	struct snap sp = { 0 };
	char buf[VMDB_PATH_MAX];
	pthread_mutex_lock(&db->lock);
	struct node *x = node_lookup(db, path, false);
	if (x) {
		size_t plen = strlen(path);
		memcpy(buf, path, plen + 1);
		if (plen == 1)
			plen = 0; /* children of the root are "/name" */
		snap_rec(&sp, x, buf, plen);
	}
	pthread_mutex_unlock(&db->lock);
	if (sp.err) {
		vmdb_ops_free(sp.ops, sp.n);
		return sp.err;
	}
	*ops = sp.ops;
	*n = sp.n;
	return 0;
}

/* ---------------------------------------------------------------- contexts */

struct vmdb_ctx *vmdb_ctx_new(struct vmdb_db *db, const struct vmdb_ident *id)
{
	struct vmdb_ctx *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->db = db;
	c->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->efd < 0) {
		free(c);
		return NULL;
	}
	if (id) {
		c->id = *id;
		if (id->own) {
			c->own = strdup(id->own);
			c->id.own = c->own;
		}
	} else {
		c->id.local = true;
		c->id.uid = getuid();
		c->id.pid = getpid();
	}
	strcpy(c->cwd, "/");
	c->next_wid = 1;
	pthread_mutex_lock(&db->lock);
	c->next = db->ctxs;
	if (db->ctxs)
		db->ctxs->prev = c;
	db->ctxs = c;
	pthread_mutex_unlock(&db->lock);
	return c;
}

static void q_clear(struct vmdb_ctx *c, struct pend *p)
{
	while (p) {
		struct pend *nx = p->next;
		if (p->op.kind == VMDB_OP_SET && p->op.v.type == VMDB_T_STRING)
			free((char *)p->op.v.s);
		free(p);
		p = nx;
	}
}

void vmdb_ctx_free(struct vmdb_ctx *c)
{
	if (!c)
		return;
	struct vmdb_db *db = c->db;
	vmdb_abort(c);
	pthread_mutex_lock(&db->lock);
	if (c->prev) c->prev->next = c->next; else db->ctxs = c->next;
	if (c->next) c->next->prev = c->prev;
	struct watch *w = c->watches;
	while (w) {
		struct watch *nx = w->next;
		if (!w->dead)
			db->nwatch--;
		free(w);
		w = nx;
	}
	q_clear(c, c->qhead);
	pthread_mutex_unlock(&db->lock);
	free(c->qht);
	free(c->txn);
	free(c->own);
	close(c->efd);
	free(c);
}

struct vmdb_db *vmdb_ctx_db(struct vmdb_ctx *c) { return c->db; }
const char *vmdb_ctx_cwd(const struct vmdb_ctx *c) { return c->cwd; }
int vmdb_ctx_fd(struct vmdb_ctx *c) { return c->efd; }
const struct vmdb_ident *vmdb_ctx_ident(const struct vmdb_ctx *c) { return &c->id; }

int vmdb_ctx_abspath(const struct vmdb_ctx *c, const char *path, char *out)
{
	if (!path)
		return -EINVAL;
	size_t n;
	if (path[0] == '/') {
		n = strlen(path);
		if (n >= VMDB_PATH_MAX)
			return -EINVAL;
		memcpy(out, path, n + 1);
	} else {
		size_t cl = strlen(c->cwd), pl = strlen(path);
		if (cl + 1 + pl >= VMDB_PATH_MAX || !pl)
			return -EINVAL;
		memcpy(out, c->cwd, cl);
		if (cl > 1)
			out[cl++] = '/';
		memcpy(out + cl, path, pl + 1);
		n = cl + pl;
	}
	/* A trailing slash is tolerated: "/vm/0/" is "/vm/0". */
	if (n > 1 && out[n - 1] == '/')
		out[--n] = 0;
	return vmdb_wire_check_path(out, n);
}

int vmdb_ctx_cd(struct vmdb_ctx *c, const char *path)
{
	char abs[VMDB_PATH_MAX];
	int rc = vmdb_ctx_abspath(c, path, abs);
	if (rc)
		return rc;
	if (!sresolve(c->db->schema, abs))
		return -EINVAL;
	strcpy(c->cwd, abs);
	return 0;
}

size_t vmdb_ctx_pending(struct vmdb_ctx *c)
{
	pthread_mutex_lock(&c->db->lock);
	size_t n = c->qcount;
	pthread_mutex_unlock(&c->db->lock);
	return n;
}

/* Detach the queue; caller holds the lock. */
static struct pend *q_take(struct vmdb_ctx *c)
{
	struct pend *head = c->qhead;
	c->qhead = c->qtail = NULL;
	if (c->qht)
		memset(c->qht, 0, (c->qmask + 1) * sizeof(*c->qht));
	c->qcount = 0;
	uint64_t v;
	if (c->signaled && read(c->efd, &v, sizeof(v)) < 0) {
		/* EAGAIN: nothing to drain. */
	}
	c->signaled = false;
	return head;
}

int vmdb_ctx_dispatch(struct vmdb_ctx *c)
{
	pthread_mutex_lock(&c->db->lock);
	struct pend *head = q_take(c);
	pthread_mutex_unlock(&c->db->lock);
	int n = 0;
	for (struct pend *p = head; p; p = p->next, n++) {
		size_t plen = strlen(p->path);
		for (struct watch *w = c->watches; w; w = w->next) {
			if (w->dead)
				continue;
			if (within(p->path, w->path, w->plen) ||
			    (p->op.kind == VMDB_OP_DEL && within(w->path, p->path, plen)))
				w->cb(w->opaque, p->path, p->op.kind == VMDB_OP_SET ? &p->op.v : NULL);
		}
	}
	q_clear(c, head);
	/* Watches removed during callbacks are freed only now. */
	pthread_mutex_lock(&c->db->lock);
	for (struct watch **pp = &c->watches; *pp;) {
		if ((*pp)->dead) {
			struct watch *d = *pp;
			*pp = d->next;
			free(d);
		} else {
			pp = &(*pp)->next;
		}
	}
	pthread_mutex_unlock(&c->db->lock);
	return n;
}

void vmdb_ctx_fd_cb(void *ctx, uint32_t events)
{
	vmdb_ctx_dispatch(ctx);
}

int vmdb_ctx_take_queue(struct vmdb_ctx *c, struct vmdb_op **ops, unsigned *n)
{
	pthread_mutex_lock(&c->db->lock);
	size_t cnt = c->qcount;
	struct pend *head = q_take(c);
	pthread_mutex_unlock(&c->db->lock);
	*ops = NULL;
	*n = 0;
	if (!cnt) {
		q_clear(c, head);
		return 0;
	}
	struct vmdb_op *o = calloc(cnt, sizeof(*o));
	if (!o) {
		q_clear(c, head);
		return -ENOMEM;
	}
	unsigned i = 0;
	for (struct pend *p = head; p && i < cnt; p = p->next)
		if (!vmdb_op_copy(&o[i], &p->op))
			i++;
	q_clear(c, head);
	*ops = o;
	*n = i;
	return 0;
}

/* ---------------------------------------------------------------- values */

static int parse_value(const struct snode *sn, const char *text, struct vmdb_value *v)
{
	v->type = sn->type;
	v->s = NULL;
	v->i = 0;
	if (!text)
		return -EINVAL;
	switch (sn->type) {
	case VMDB_T_STRING:
		if (strlen(text) > VMDB_STRING_MAX)
			return -EINVAL;
		v->s = text;
		return 0;
	case VMDB_T_INT: {
		char *end;
		errno = 0;
		long long x = strtoll(text, &end, 0);
		if (errno || end == text || *end)
			return -EINVAL;
		v->i = x;
		return 0;
	}
	case VMDB_T_BOOL:
		if (!strcmp(text, "true") || !strcmp(text, "1") || !strcmp(text, "yes") || !strcmp(text, "on"))
			v->i = 1;
		else if (!strcmp(text, "false") || !strcmp(text, "0") || !strcmp(text, "no") || !strcmp(text, "off"))
			v->i = 0;
		else
			return -EINVAL;
		return 0;
	case VMDB_T_ENUM:
		for (unsigned i = 0; i < sn->nchoices; i++)
			if (!strcmp(sn->choices[i], text)) {
				v->i = i;
				v->s = sn->choices[i];
				return 0;
			}
		return -EINVAL;
	default:
		return -EISDIR;
	}
}

int vmdb_value_format(const struct vmdb_value *v, char *buf, size_t len)
{
	switch (v->type) {
	case VMDB_T_STRING: return snprintf(buf, len, "%s", v->s ? v->s : "");
	case VMDB_T_INT: return snprintf(buf, len, "%lld", (long long)v->i);
	case VMDB_T_BOOL: return snprintf(buf, len, "%s", v->i ? "true" : "false");
	case VMDB_T_ENUM: return snprintf(buf, len, "%s", v->s ? v->s : "?");
	default: return snprintf(buf, len, "%s", "");
	}
}

static int txn_push(struct vmdb_ctx *c, const struct vmdb_op *op)
{
	if (c->ntxn == c->captxn) {
		unsigned ncap = c->captxn ? c->captxn * 2 : 16;
		struct vmdb_op *no = realloc(c->txn, ncap * sizeof(*no));
		if (!no)
			return -ENOMEM;
		c->txn = no;
		c->captxn = ncap;
	}
	int rc = vmdb_op_copy(&c->txn[c->ntxn], op);
	if (!rc)
		c->ntxn++;
	return rc;
}

static int submit(struct vmdb_ctx *c, const struct vmdb_op *ops, unsigned n)
{
	struct vmdb_db *db = c->db;
	if (db->rops)
		return db->rops->commit(db->remote, ops, n);
	return vmdb_db_apply(db, ops, n, &c->id, false, NULL);
}

/* op->path is canonical (vmdb_ctx_abspath) and resolved to sn. */
static int do_op(struct vmdb_ctx *c, struct vmdb_op *op, const struct snode *sn)
{
	/* Check now, so that a transaction fails at the set that is wrong. */
	int rc = check_op_sn(sn, op, &c->id, false);
	if (rc)
		return rc;
	if (c->in_txn)
		return txn_push(c, op);
	if (c->db->rops)
		return submit(c, op, 1);
	apply_checked(c->db, op, 1);
	return 0;
}

int vmdb_set_value(struct vmdb_ctx *c, const char *path, const struct vmdb_value *v)
{
	char abs[VMDB_PATH_MAX];
	int rc = vmdb_ctx_abspath(c, path, abs);
	if (rc)
		return rc;
	struct vmdb_op op = { .kind = VMDB_OP_SET, .path = abs, .v = *v };
	return do_op(c, &op, sresolve(c->db->schema, abs));
}

int vmdb_set(struct vmdb_ctx *c, const char *path, const char *text)
{
	char abs[VMDB_PATH_MAX];
	int rc = vmdb_ctx_abspath(c, path, abs);
	if (rc)
		return rc;
	const struct snode *sn = sresolve(c->db->schema, abs);
	if (!sn)
		return -EINVAL;
	struct vmdb_op op = { .kind = VMDB_OP_SET, .path = abs };
	rc = parse_value(sn, text, &op.v);
	if (rc)
		return rc;
	return do_op(c, &op, sn);
}

int vmdb_set_int(struct vmdb_ctx *c, const char *path, int64_t v)
{
	struct vmdb_value val = { .type = VMDB_T_INT, .i = v };
	return vmdb_set_value(c, path, &val);
}

int vmdb_set_bool(struct vmdb_ctx *c, const char *path, bool v)
{
	struct vmdb_value val = { .type = VMDB_T_BOOL, .i = v };
	return vmdb_set_value(c, path, &val);
}

int vmdb_delete(struct vmdb_ctx *c, const char *path)
{
	char abs[VMDB_PATH_MAX];
	int rc = vmdb_ctx_abspath(c, path, abs);
	if (rc)
		return rc;
	struct vmdb_op op = { .kind = VMDB_OP_DEL, .path = abs };
	return do_op(c, &op, sresolve(c->db->schema, abs));
}

/*
 * Inside a transaction the context's own staged ops win: the newest op
 * that names path or deletes an ancestor.  Returns 1 (found, *op set),
 * 0 (not staged), or -ENOENT (staged as deleted).
 */
static int txn_find(const struct vmdb_ctx *c, const char *path, const struct vmdb_op **op)
{
	for (unsigned i = c->ntxn; i-- > 0;) {
		const struct vmdb_op *o = &c->txn[i];
		if (!strcmp(o->path, path)) {
			if (o->kind == VMDB_OP_DEL)
				return -ENOENT;
			*op = o;
			return 1;
		}
		if (o->kind == VMDB_OP_DEL && within(path, o->path, strlen(o->path)))
			return -ENOENT;
	}
	return 0;
}

static int get_value(struct vmdb_ctx *c, const char *path, char *buf, size_t len,
                     struct vmdb_value *out)
{
	char abs[VMDB_PATH_MAX];
	int rc = vmdb_ctx_abspath(c, path, abs);
	if (rc)
		return rc;
	const struct snode *sn = sresolve(c->db->schema, abs);
	if (!sn)
		return -EINVAL;
	if (sn->type == VMDB_T_NONE)
		return -EISDIR;
	if (c->in_txn) {
		const struct vmdb_op *o = NULL;
		rc = txn_find(c, abs, &o);
		if (rc < 0)
			return rc;
		if (rc > 0) {
			*out = o->v;
			return buf ? vmdb_value_format(&o->v, buf, len) : 0;
		}
	}
	pthread_mutex_lock(&c->db->lock);
	struct node *x = node_lookup(c->db, abs, false);
	if (!x) {
		pthread_mutex_unlock(&c->db->lock);
		return -ENOENT;
	}
	node_value(x, out);
	rc = buf ? vmdb_value_format(out, buf, len) : 0;
	out->s = NULL; /* not valid outside the lock */
	pthread_mutex_unlock(&c->db->lock);
	return rc;
}

int vmdb_get(struct vmdb_ctx *c, const char *path, char *buf, size_t len)
{
	struct vmdb_value v;
	return get_value(c, path, buf, len, &v);
}

int vmdb_get_int(struct vmdb_ctx *c, const char *path, int64_t *out)
{
	struct vmdb_value v;
	int rc = get_value(c, path, NULL, 0, &v);
	if (rc < 0)
		return rc;
	if (v.type != VMDB_T_INT && v.type != VMDB_T_ENUM)
		return -EINVAL;
	*out = v.i;
	return 0;
}

int vmdb_get_bool(struct vmdb_ctx *c, const char *path, bool *out)
{
	struct vmdb_value v;
	int rc = get_value(c, path, NULL, 0, &v);
	if (rc < 0)
		return rc;
	if (v.type != VMDB_T_BOOL)
		return -EINVAL;
	*out = v.i != 0;
	return 0;
}

int vmdb_exists(struct vmdb_ctx *c, const char *path)
{
	char abs[VMDB_PATH_MAX];
	int rc = vmdb_ctx_abspath(c, path, abs);
	if (rc)
		return rc;
	if (c->in_txn) {
		const struct vmdb_op *o;
		rc = txn_find(c, abs, &o);
		if (rc)
			return rc > 0;
	}
	pthread_mutex_lock(&c->db->lock);
	rc = node_lookup(c->db, abs, false) != NULL;
	pthread_mutex_unlock(&c->db->lock);
	return rc;
}

struct lent {
	char name[VMDB_NAME_MAX];
	bool leaf;
};

static int lent_cmp(const void *a, const void *b)
{
	const struct lent *x = a, *y = b;
	size_t lx = strlen(x->name), ly = strlen(y->name);
	return lx != ly ? (lx < ly ? -1 : 1) : strcmp(x->name, y->name);
}

int vmdb_list(struct vmdb_ctx *c, const char *path, vmdb_list_cb cb, void *opaque)
{
	char abs[VMDB_PATH_MAX];
	int rc = vmdb_ctx_abspath(c, path, abs);
	if (rc)
		return rc;
	pthread_mutex_lock(&c->db->lock);
	struct node *x = node_lookup(c->db, abs, false);
	if (!x) {
		pthread_mutex_unlock(&c->db->lock);
		return sresolve(c->db->schema, abs) ? -ENOENT : -EINVAL;
	}
	size_t n = 0;
	for (struct node *ch = x->child; ch; ch = ch->next)
		n++;
	struct lent *e = calloc(n ? n : 1, sizeof(*e));
	if (!e) {
		pthread_mutex_unlock(&c->db->lock);
		return -ENOMEM;
	}
	size_t i = 0;
	for (struct node *ch = x->child; ch; ch = ch->next, i++) {
		memcpy(e[i].name, ch->name, ch->namelen + 1u);
		e[i].leaf = ch->s->type != VMDB_T_NONE;
	}
	bool arr = x->s->array != NULL;
	pthread_mutex_unlock(&c->db->lock);
	/* Numeric order for arrays: "10" after "9". */
	if (arr)
		qsort(e, n, sizeof(*e), lent_cmp);
	for (i = 0; i < n; i++)
		cb(opaque, e[i].name, e[i].leaf);
	free(e);
	return (int)n;
}

int vmdb_walk(struct vmdb_ctx *c, const char *path, vmdb_walk_cb cb, void *opaque)
{
	char abs[VMDB_PATH_MAX];
	int rc = vmdb_ctx_abspath(c, path, abs);
	if (rc)
		return rc;
	struct vmdb_op *ops;
	unsigned n;
	rc = vmdb_db_snapshot(c->db, abs, &ops, &n);
	if (rc)
		return rc;
	for (unsigned i = 0; i < n; i++)
		cb(opaque, ops[i].path, &ops[i].v);
	vmdb_ops_free(ops, n);
	return (int)n;
}

/* ---------------------------------------------------------------- txn */

int vmdb_begin(struct vmdb_ctx *c)
{
	if (c->in_txn)
		return -EBUSY;
	c->in_txn = true;
	c->ntxn = 0;
	return 0;
}

int vmdb_commit(struct vmdb_ctx *c)
{
	if (!c->in_txn)
		return -EINVAL;
	int rc = c->ntxn ? submit(c, c->txn, c->ntxn) : 0;
	vmdb_abort(c);
	return rc;
}

void vmdb_abort(struct vmdb_ctx *c)
{
	for (unsigned i = 0; i < c->ntxn; i++)
		vmdb_op_clear(&c->txn[i]);
	c->ntxn = 0;
	c->in_txn = false;
}

bool vmdb_in_txn(const struct vmdb_ctx *c)
{
	return c->in_txn;
}

/* ---------------------------------------------------------------- watches */

int vmdb_watch(struct vmdb_ctx *c, const char *path, vmdb_watch_cb cb, void *opaque)
{
	char abs[VMDB_PATH_MAX];
	int rc = vmdb_ctx_abspath(c, path, abs);
	if (rc)
		return rc;
	if (!cb || !sresolve(c->db->schema, abs))
		return -EINVAL;
	struct watch *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	strcpy(w->path, abs);
	w->plen = strlen(abs);
	w->cb = cb;
	w->opaque = opaque;
	pthread_mutex_lock(&c->db->lock);
	w->id = c->next_wid++;
	/* Append, so callbacks run in the order the watches were made. */
	struct watch **pp = &c->watches;
	while (*pp)
		pp = &(*pp)->next;
	*pp = w;
	c->db->nwatch++;
	pthread_mutex_unlock(&c->db->lock);
	return w->id;
}

int vmdb_unwatch(struct vmdb_ctx *c, int watch_id)
{
	int rc = -ENOENT;
	pthread_mutex_lock(&c->db->lock);
	for (struct watch *w = c->watches; w; w = w->next)
		if (w->id == watch_id && !w->dead) {
			w->dead = true;
			c->db->nwatch--;
			rc = 0;
			break;
		}
	pthread_mutex_unlock(&c->db->lock);
	return rc;
}

int vmdb_unwatch_path(struct vmdb_ctx *c, const char *path)
{
	int rc = -ENOENT;
	pthread_mutex_lock(&c->db->lock);
	for (struct watch *w = c->watches; w; w = w->next)
		if (!w->dead && !strcmp(w->path, path)) {
			w->dead = true;
			c->db->nwatch--;
			rc = 0;
			break;
		}
	pthread_mutex_unlock(&c->db->lock);
	return rc;
}

const char *vmdb_strerror(int err)
{
	switch (err) {
	case 0: return "success";
	case -EINVAL: return "invalid path or value (not in the schema, or the wrong type)";
	case -ENOENT: return "no such path";
	case -EISDIR: return "not a leaf";
	case -EACCES: return "permission denied (read-only for clients)";
	case -ENOTCONN: return "not connected to vireod";
	case -EPROTO: return "protocol error";
	case -ETIMEDOUT: return "timed out";
	case -EBUSY: return "a transaction is already open";
	case -EPERM: return "refused";
	default: return strerror(err < 0 ? -err : err);
	}
}
