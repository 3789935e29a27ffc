#!/bin/sh
# Run a command with a 64 KiB RLIMIT_MEMLOCK and without CAP_IPC_LOCK, so
# that mlockall of a whole process must fail.
exec prlimit --memlock=65536:65536 \
  setpriv --bounding-set=-ipc_lock --inh-caps=-ipc_lock -- "$@"
