/* The executor's check of a plan before anything runs (called by corral_spawn, before the clone):
 * the magic, the op count against the size, every op code, every slot index against SLOT_COUNT,
 * every string, list and blob offset against the plan's size. A plan that fails is never run, so a
 * corrupt or mismatched plan is an error for the caller instead of a crash in the child. */
#include <stddef.h>
#include <stdint.h>

#include "plan.h"

/* What an n or s word of an op holds. */
enum word {
	W_ANY = 0,  /* a number, or an unused word */
	W_SLOT,     /* n: a slot index */
	W_DIR,      /* n: a slot index + 1, or 0 */
	W_STR,      /* s: a string offset, or 0 */
	W_STR_REQ,  /* s: a string offset, never 0 (the executor reads it itself) */
	W_LIST,     /* s: a list of strings, with its pointer scratch at the same n */
	W_U32LIST,  /* s: a list of u32 */
	W_BLOB,     /* s: 8-byte aligned bytes, their length at n0 */
};

struct shape {
	uint8_t known;
	uint8_t n[4];
	uint8_t s[4];
};

#define S(...) { 1, __VA_ARGS__ }
static const struct shape shapes[OP_COUNT] = {
	[OP_USERNS_MAPS] = S({ 0 }, { W_STR_REQ, W_STR_REQ }),
	[OP_PRCTL] = S({ 0 }, { 0 }),
	[OP_SETSID] = S({ 0 }, { 0 }),
	[OP_MOUNT] = S({ 0 }, { W_STR, W_STR, W_STR, W_STR }),
	[OP_OPEN_TREE] = S({ W_ANY, W_SLOT }, { W_STR }),
	[OP_MOUNT_SETATTR] = S({ W_SLOT }, { 0 }),
	[OP_MOVE_MOUNT] = S({ W_SLOT }, { W_STR }),
	[OP_MKDIR] = S({ W_ANY, W_ANY, W_ANY, W_DIR }, { W_STR }),
	[OP_MKNOD] = S({ W_ANY, W_ANY, W_ANY, W_DIR }, { W_STR }),
	[OP_CREATE_FILE] = S({ W_ANY, W_ANY, W_ANY, W_DIR }, { W_STR }),
	[OP_SYMLINK] = S({ W_ANY, W_ANY, W_ANY, W_DIR }, { W_STR, W_STR }),
	[OP_PIVOT_ROOT] = S({ 0 }, { W_STR }),
	[OP_SETHOSTNAME] = S({ 0 }, { W_STR_REQ }),
	[OP_LOOPBACK_UP] = S({ 0 }, { 0 }),
	[OP_CHDIR] = S({ 0 }, { W_STR }),
	[OP_SETGROUPS] = S({ 0 }, { W_U32LIST }),
	[OP_SETRESGID] = S({ 0 }, { 0 }),
	[OP_SETRESUID] = S({ 0 }, { 0 }),
	[OP_DUP2] = S({ 0 }, { 0 }),
	[OP_CLOSE_FDS] = S({ 0 }, { W_U32LIST }),
	[OP_RESOLVE_COMMAND] = S({ 0 }, { W_STR_REQ, W_STR }),
	[OP_WAIT_START] = S({ 0 }, { 0 }),
	[OP_SETNS] = S({ 0 }, { 0 }),
	[OP_FORK_INTO_PARENT] = S({ 0 }, { 0 }),
	[OP_EXEC] = S({ 0 }, { W_LIST, W_LIST }),
	[OP_UMASK] = S({ 0 }, { 0 }),
	[OP_CLOEXEC_FROM] = S({ 0 }, { 0 }),
	[OP_CAPBSET_LIMIT] = S({ 0 }, { 0 }),
	[OP_CAPSET] = S({ 0 }, { 0 }),
	[OP_UNSHARE] = S({ 0 }, { 0 }),
	[OP_OPEN_IN_ROOT] = S({ W_DIR, W_SLOT }, { W_STR_REQ }),
	[OP_MOUNT_AT] = S({ W_ANY, W_SLOT }, { W_STR, 0, W_STR, W_STR }),
	[OP_MOVE_MOUNT_AT] = S({ W_SLOT, W_SLOT }, { 0 }),
	[OP_SETATTR_ONE] = S({ W_SLOT }, { 0 }),
	[OP_SECCOMP] = S({ 0 }, { W_BLOB }),
	[OP_SETRLIMIT] = S({ 0 }, { 0 }),
	[OP_WRITE_FILE] = S({ 0 }, { W_STR_REQ, W_STR_REQ }),
	[OP_MASK_PATH] = S({ W_DIR }, { W_STR_REQ }),
	[OP_READONLY_PATH] = S({ W_DIR }, { W_STR_REQ }),
	[OP_CHDIR_IN_ROOT] = S({ 0 }, { W_STR_REQ }),
	[OP_CHECK_CWD] = S({ 0 }, { 0 }),
	[OP_CLOSE_SLOTS] = S({ 0 }, { 0 }),
	[OP_REEXEC] = S({ 0 }, { W_U32LIST }),
	[OP_CONSOLE] = S({ 0 }, { 0 }),
	[OP_INIT] = S({ 0 }, { 0 }),
	[OP_AWAIT_MAPS] = S({ 0 }, { 0 }),
	[OP_CHOWN_IN_ROOT] = S({ W_ANY, W_ANY, W_ANY, W_DIR }, { W_STR_REQ }),
	[OP_BIND_OWN_FILE] = S({ W_DIR, W_DIR }, { W_STR_REQ, W_STR_REQ, W_STR_REQ }),
	[OP_FSOPEN] = S({ W_SLOT }, { W_STR_REQ }),
	[OP_FSCONFIG] = S({ W_SLOT, W_ANY, W_SLOT }, { W_STR, W_STR }),
	[OP_OVERLAY_LOWERS] = S({ W_SLOT, W_ANY, W_SLOT, W_DIR }, { 0, W_LIST }),
	[OP_FSMOUNT] = S({ W_SLOT, W_ANY, W_SLOT }, { 0 }),
	[OP_EXIT] = S({ 0 }, { 0 }),
	[OP_WRITE_IN_ROOT] = S({ W_DIR }, { W_STR_REQ, W_STR_REQ }),
};

/* A NUL-terminated string that starts at off and ends inside the plan. */
static int string_ok(const uint8_t *plan, uint64_t size, uint64_t off)
{
	if (off < sizeof(struct plan_header) || off >= size)
		return 0;
	for (uint64_t i = off; i < size; i++)
		if (!plan[i])
			return 1;
	return 0;
}

/* A { u32 count; u32 items[count]; } that fits in the plan; its count in *count. */
static int u32_list_ok(const uint8_t *plan, uint64_t size, uint64_t off, uint32_t *count)
{
	if (off < sizeof(struct plan_header) || off % 4 || off + 4 > size)
		return 0;
	*count = *(const uint32_t *)(plan + off);
	return *count <= (size - off - 4) / 4;
}

static int word_ok(const uint8_t *plan, uint64_t size, const struct plan_op *op, int k)
{
	const struct shape *sh = &shapes[op->code];
	int64_t n = op->n[k];
	uint64_t s = op->s[k];
	uint32_t count;
	switch (sh->n[k]) {
	case W_SLOT:
		if (n < 0 || n >= SLOT_COUNT)
			return 0;
		break;
	case W_DIR:
		if (n < 0 || n > SLOT_COUNT)
			return 0;
		break;
	}
	switch (sh->s[k]) {
	case W_ANY:
		return 1;
	case W_STR:
		return s == 0 || string_ok(plan, size, s);
	case W_STR_REQ:
		return string_ok(plan, size, s);
	case W_U32LIST:
		return u32_list_ok(plan, size, s, &count);
	case W_LIST:
		if (!u32_list_ok(plan, size, s, &count))
			return 0;
		for (uint32_t i = 0; i < count; i++)
			if (!string_ok(plan, size, ((const uint32_t *)(plan + s))[1 + i]))
				return 0;
		/* room for count + 1 pointers at n[k] */
		return n >= (int64_t)sizeof(struct plan_header) && n % 8 == 0 && (uint64_t)n <= size &&
		       (uint64_t)count + 1 <= (size - (uint64_t)n) / 8;
	case W_BLOB:
		return k == 0 && s >= sizeof(struct plan_header) && s % 8 == 0 && s <= size && n >= 0 &&
		       n % 8 == 0 && (uint64_t)n <= size - s;
	}
	return 0;
}

long plan_check(const void *plan, uint64_t size)
{
	const struct plan_header *h = plan;
	if (size < sizeof *h || h->magic != PLAN_MAGIC || h->size != size ||
	    h->op_count > (size - sizeof *h) / sizeof(struct plan_op))
		return PLAN_BAD_HEADER;
	const struct plan_op *ops = (const struct plan_op *)((const uint8_t *)plan + sizeof *h);
	for (uint32_t i = 0; i < h->op_count; i++) {
		if (ops[i].code >= OP_COUNT || !shapes[ops[i].code].known)
			return i;
		for (int k = 0; k < 4; k++)
			if (!word_ok(plan, size, &ops[i], k))
				return i;
	}
	return -1;
}
