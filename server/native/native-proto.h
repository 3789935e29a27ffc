/* nbdswap: the NBD protocol constants the native server speaks, server
 * side.  Written from the protocol description (NetworkBlockDevice/nbd,
 * doc/proto.md); only what the native server uses: fixed newstyle
 * negotiation and simple replies (the kernel client uses nothing else).
 * All integers travel in network byte order.
 */
#ifndef NBDSWAP_NATIVE_PROTO_H
#define NBDSWAP_NATIVE_PROTO_H

#include <stdint.h>

/* Negotiation. */
#define NBD_MAGIC_INIT      UINT64_C (0x4e42444d41474943)   /* "NBDMAGIC" */
#define NBD_MAGIC_OPT       UINT64_C (0x49484156454f5054)   /* "IHAVEOPT" */
#define NBD_MAGIC_REP       UINT64_C (0x0003e889045565a9)

#define NBD_FLAG_FIXED_NEWSTYLE   (1u << 0)   /* handshake flags */
#define NBD_FLAG_NO_ZEROES        (1u << 1)
#define NBD_FLAG_C_FIXED_NEWSTYLE (1u << 0)   /* client flags */
#define NBD_FLAG_C_NO_ZEROES      (1u << 1)

#define NBD_OPT_EXPORT_NAME       1
#define NBD_OPT_ABORT             2
#define NBD_OPT_LIST              3
#define NBD_OPT_STARTTLS          5
#define NBD_OPT_INFO              6
#define NBD_OPT_GO                7
#define NBD_OPT_STRUCTURED_REPLY  8

#define NBD_REP_ACK               1
#define NBD_REP_SERVER            2
#define NBD_REP_INFO              3
#define NBD_REP_ERR               (1u << 31)
#define NBD_REP_ERR_UNSUP         (NBD_REP_ERR | 1)
#define NBD_REP_ERR_POLICY        (NBD_REP_ERR | 2)
#define NBD_REP_ERR_INVALID       (NBD_REP_ERR | 3)
#define NBD_REP_ERR_TLS_REQD      (NBD_REP_ERR | 5)
#define NBD_REP_ERR_UNKNOWN       (NBD_REP_ERR | 6)
#define NBD_REP_ERR_SHUTDOWN      (NBD_REP_ERR | 7)
#define NBD_REP_ERR_TOO_BIG       (NBD_REP_ERR | 9)

#define NBD_INFO_EXPORT           0
#define NBD_INFO_BLOCK_SIZE       3

/* Transmission flags (16 bits). */
#define NBD_FLAG_HAS_FLAGS        (1u << 0)
#define NBD_FLAG_READ_ONLY        (1u << 1)
#define NBD_FLAG_SEND_FLUSH       (1u << 2)
#define NBD_FLAG_SEND_FUA         (1u << 3)
#define NBD_FLAG_SEND_WRITE_ZEROES (1u << 6)
#define NBD_FLAG_CAN_MULTI_CONN   (1u << 8)
#define NBD_FLAG_SEND_FAST_ZERO   (1u << 11)

/* Transmission. */
#define NBD_MAGIC_REQUEST         UINT32_C (0x25609513)
#define NBD_MAGIC_SIMPLE_REPLY    UINT32_C (0x67446698)

#define NBD_CMD_READ              0
#define NBD_CMD_WRITE             1
#define NBD_CMD_DISC              2
#define NBD_CMD_FLUSH             3
#define NBD_CMD_TRIM              4
#define NBD_CMD_WRITE_ZEROES      6

#define NBD_CMD_FLAG_FUA          (1u << 0)
#define NBD_CMD_FLAG_NO_HOLE      (1u << 1)
#define NBD_CMD_FLAG_FAST_ZERO    (1u << 4)

/* Error values on the wire (Linux's numbers, fixed by the protocol). */
#define NBD_EPERM                 1
#define NBD_EIO                   5
#define NBD_ENOMEM                12
#define NBD_EINVAL                22
#define NBD_ENOSPC                28
#define NBD_EOVERFLOW             75
#define NBD_ENOTSUP               95
#define NBD_ESHUTDOWN             108

/* A request header: 28 bytes on the wire. */
struct nbd_request {
  uint32_t magic;
  uint16_t flags;
  uint16_t type;
  uint64_t cookie;
  uint64_t offset;
  uint32_t length;
} __attribute__ ((packed));

/* A simple reply header: 16 bytes, followed by the data of a read. */
struct nbd_simple_reply {
  uint32_t magic;
  uint32_t error;
  uint64_t cookie;
} __attribute__ ((packed));

#endif /* NBDSWAP_NATIVE_PROTO_H */
