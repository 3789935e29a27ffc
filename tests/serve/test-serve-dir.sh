#!/bin/bash
# nbdswap serve --dir (the native server): one server, one export per
# file of a directory: the cases of serve-dir-cases.sh, the same as the
# plugin's dir= (test-plugin-dir.sh).
source "$(dirname "$0")/functions.sh"
KIND=native
source "$(dirname "$0")/serve-dir-cases.sh"
