#!/bin/bash
# The plugin's dir= with per-export allow lists (allow=NAME=CIDR): the
# cases of serve-dir-allow-cases.sh, the same as serve --dir --allow
# NAME=CIDR's (test-serve-dir-allow.sh), with nbdkit and the plugin as
# serve --nbdkit --dir --allow runs them (test-plugin-dir.sh starts
# nbdkit with dir= itself).  nbdkit 1.32 tells the plugin no client's
# TLS identity: addresses are the plugin's only per-export rule.
source "$(dirname "$0")/functions.sh"

fleet alpha bravo charlie
KIND=nbdkit
source "$(dirname "$0")/serve-dir-allow-cases.sh"
