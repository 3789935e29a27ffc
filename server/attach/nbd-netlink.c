/* nbdswap: NBD_CMD_CONNECT, RECONFIGURE, DISCONNECT and the LINK_DEAD
 * notification, over the nbd driver's generic-netlink family with
 * libnl-genl-3.  Attributes as in <linux/nbd-netlink.h> (Linux 4.12+).
 */
#include <config.h>

#include <errno.h>
#include <stdbool.h>
#include <linux/nbd-netlink.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/netlink.h>

#include "nbd-netlink.h"

/* What a request's answer carried. */
struct reply {
  int err;                      /* 0, or the kernel's -errno */
  int index;                    /* NBD_ATTR_INDEX of a reply, or -1 */
  bool done;
};

/* A valid message: remember the device index the kernel names. */
static int
on_valid (struct nl_msg *msg, void *arg)
{
  struct reply *r = arg;
  struct nlattr *attrs[NBD_ATTR_MAX + 1];

  if (genlmsg_parse (nlmsg_hdr (msg), 0, attrs, NBD_ATTR_MAX, NULL) == 0
      && attrs[NBD_ATTR_INDEX])
    r->index = (int) nla_get_u32 (attrs[NBD_ATTR_INDEX]);
  return NL_OK;
}

/* The kernel refused: keep its errno. */
static int
on_error (struct sockaddr_nl *nla, struct nlmsgerr *e, void *arg)
{
  struct reply *r = arg;

  (void) nla;
  r->err = e->error < 0 ? e->error : -EIO;
  r->done = true;
  return NL_STOP;
}

/* The final acknowledgement. */
static int
on_ack (struct nl_msg *msg, void *arg)
{
  struct reply *r = arg;

  (void) msg;
  r->done = true;
  return NL_STOP;
}

/* Maps a libnl error code to an errno. */
static int
nl_to_errno (int nlerr)
{
  switch (-nlerr) {
  case NLE_NOMEM: return -ENOMEM;
  case NLE_OBJ_NOTFOUND: return -ENOENT;   /* no "nbd" family: no module */
  case NLE_PERM: return -EPERM;
  case NLE_BUSY: return -EBUSY;
  case NLE_NOACCESS: return -EACCES;
  default: return -EIO;
  }
}

/* Opens a connected generic-netlink socket; *family gets "nbd"'s id. */
static int
open_nbd (struct nl_sock **out, int *family)
{
  struct nl_sock *sk;
  int r;

  sk = nl_socket_alloc ();
  if (sk == NULL)
    return -ENOMEM;
  r = genl_connect (sk);
  if (r < 0)
    goto error;
  r = genl_ctrl_resolve (sk, "nbd");
  if (r < 0)
    goto error;
  *family = r;
  *out = sk;
  return 0;

 error:
  nl_socket_free (sk);
  return nl_to_errno (r);
}

/* Starts a message for command cmd; NULL if out of memory. */
static struct nl_msg *
msg_new (int family, uint8_t cmd)
{
  struct nl_msg *msg = nlmsg_alloc ();

  if (msg && !genlmsg_put (msg, NL_AUTO_PORT, NL_AUTO_SEQ, family, 0, 0,
                           cmd, 0)) {
    nlmsg_free (msg);
    return NULL;
  }
  return msg;
}

/* Adds NBD_ATTR_SOCKETS with one NBD_SOCK_ITEM per descriptor. */
static int
put_sockets (struct nl_msg *msg, const int *fds, unsigned nr)
{
  struct nlattr *socks, *item;
  unsigned i;

  socks = nla_nest_start (msg, NBD_ATTR_SOCKETS);
  if (socks == NULL)
    return -EMSGSIZE;
  for (i = 0; i < nr; ++i) {
    item = nla_nest_start (msg, NBD_SOCK_ITEM);
    if (item == NULL || nla_put_u32 (msg, NBD_SOCK_FD, (uint32_t) fds[i]))
      return -EMSGSIZE;
    nla_nest_end (msg, item);
  }
  nla_nest_end (msg, socks);
  return 0;
}

/* Sends msg (consumed) and waits for the kernel's answer; *index gets
 * the index a reply named (unchanged if none).  Returns 0 or -errno. */
static int
transact (struct nl_sock *sk, struct nl_msg *msg, int *index)
{
  struct reply rep = { .err = 0, .index = -1, .done = false };
  struct nl_cb *cb;
  int r;

  r = nl_send_auto (sk, msg);
  nlmsg_free (msg);
  if (r < 0)
    return nl_to_errno (r);
  cb = nl_cb_alloc (NL_CB_DEFAULT);
  if (cb == NULL)
    return -ENOMEM;
  nl_cb_set (cb, NL_CB_VALID, NL_CB_CUSTOM, on_valid, &rep);
  nl_cb_set (cb, NL_CB_ACK, NL_CB_CUSTOM, on_ack, &rep);
  nl_cb_err (cb, NL_CB_CUSTOM, on_error, &rep);
  while (!rep.done) {
    r = nl_recvmsgs (sk, cb);
    if (r < 0 && !rep.done) {
      rep.err = nl_to_errno (r);
      break;
    }
  }
  nl_cb_put (cb);
  if (rep.err == 0 && rep.index >= 0)
    *index = rep.index;
  return rep.err;
}

/* Builds and sends one command with the given attributes. */
static int
command (uint8_t cmd, const struct nbdnl_config *cfg, int *index,
         const int *fds, unsigned nr_fds)
{
  struct nl_sock *sk;
  struct nl_msg *msg;
  int family, r;

  r = open_nbd (&sk, &family);
  if (r < 0)
    return r;
  r = -ENOMEM;
  msg = msg_new (family, cmd);
  if (msg == NULL)
    goto out;
  r = -EMSGSIZE;
  if (*index >= 0 && nla_put_u32 (msg, NBD_ATTR_INDEX, (uint32_t) *index))
    goto free_msg;
  if (cfg
      && (nla_put_u64 (msg, NBD_ATTR_SIZE_BYTES, cfg->size)
          || nla_put_u64 (msg, NBD_ATTR_BLOCK_SIZE_BYTES, cfg->block_size)
          || nla_put_u64 (msg, NBD_ATTR_SERVER_FLAGS, cfg->server_flags)
          || nla_put_u64 (msg, NBD_ATTR_TIMEOUT, cfg->timeout)
          || nla_put_u64 (msg, NBD_ATTR_DEAD_CONN_TIMEOUT,
                          cfg->dead_conn_timeout)))
    goto free_msg;
  if (nr_fds > 0 && (r = put_sockets (msg, fds, nr_fds)) < 0)
    goto free_msg;
  r = transact (sk, msg, index);
  goto out;

 free_msg:
  nlmsg_free (msg);
 out:
  nl_socket_free (sk);
  return r;
}

/* NBD_CMD_CONNECT: the reply names the device the kernel configured. */
int
nbdnl_connect (const struct nbdnl_config *cfg)
{
  int index = cfg->index;
  int r = command (NBD_CMD_CONNECT, cfg, &index, cfg->fds, cfg->nr_fds);

  return r < 0 ? r : index;
}

/* NBD_CMD_RECONFIGURE with new sockets only. */
int
nbdnl_reconfigure (int index, const int *fds, unsigned nr_fds)
{
  return command (NBD_CMD_RECONFIGURE, NULL, &index, fds, nr_fds);
}

/* NBD_CMD_DISCONNECT. */
int
nbdnl_disconnect (int index)
{
  return command (NBD_CMD_DISCONNECT, NULL, &index, NULL, 0);
}

/* A multicast message: note a LINK_DEAD for the device we watch. */
static int
on_event (struct nl_msg *msg, void *arg)
{
  struct reply *r = arg;
  struct genlmsghdr *gh = nlmsg_data (nlmsg_hdr (msg));
  struct nlattr *attrs[NBD_ATTR_MAX + 1];

  if (gh->cmd != NBD_CMD_LINK_DEAD)
    return NL_OK;
  if (genlmsg_parse (nlmsg_hdr (msg), 0, attrs, NBD_ATTR_MAX, NULL) == 0
      && attrs[NBD_ATTR_INDEX]
      && (int) nla_get_u32 (attrs[NBD_ATTR_INDEX]) == r->index)
    r->done = true;
  return NL_OK;
}

/* Notifications carry no sequence number we asked for: accept them. */
static int
any_seq (struct nl_msg *msg, void *arg)
{
  (void) msg;
  (void) arg;
  return NL_OK;
}

/* Subscribes to "nbd_mc_group"; notifications are not sequenced. */
int
nbdnl_monitor_open (struct nl_sock **out)
{
  struct nl_sock *sk;
  int family, grp, r;

  r = open_nbd (&sk, &family);
  if (r < 0)
    return r;
  grp = genl_ctrl_resolve_grp (sk, "nbd", NBD_GENL_MCAST_GROUP_NAME);
  if (grp < 0) {
    nl_socket_free (sk);
    return nl_to_errno (grp);
  }
  nl_socket_disable_seq_check (sk);
  r = nl_socket_add_membership (sk, grp);
  if (r == 0)
    r = nl_socket_set_nonblocking (sk);
  if (r < 0) {
    nl_socket_free (sk);
    return nl_to_errno (r);
  }
  *out = sk;
  return 0;
}

/* Drains the monitor socket; 1 if device index's link died. */
int
nbdnl_monitor_read (struct nl_sock *sk, int index)
{
  struct reply rep = { .err = 0, .index = index, .done = false };
  struct nl_cb *cb;
  int r;

  cb = nl_cb_alloc (NL_CB_DEFAULT);
  if (cb == NULL)
    return -ENOMEM;
  nl_cb_set (cb, NL_CB_VALID, NL_CB_CUSTOM, on_event, &rep);
  /* A fresh callback set does not inherit the socket's disabled sequence
   * check; without this every notification is a "sequence mismatch". */
  nl_cb_set (cb, NL_CB_SEQ_CHECK, NL_CB_CUSTOM, any_seq, NULL);
  do
    r = nl_recvmsgs (sk, cb);
  while (r >= 0);
  nl_cb_put (cb);
  if (rep.done)
    return 1;
  if (r == -NLE_AGAIN)
    return 0;
  if (r == -NLE_NOMEM)          /* libnl's ENOBUFS: the queue overflowed */
    return -ENOBUFS;
  return nl_to_errno (r);
}

int
nbdnl_monitor_fd (struct nl_sock *sk)
{
  return nl_socket_get_fd (sk);
}

void
nbdnl_monitor_close (struct nl_sock *sk)
{
  nl_socket_free (sk);
}
