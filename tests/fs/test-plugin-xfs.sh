#!/bin/bash
# The plugin on xfs: the serving cases of serve-xfs-cases.sh (the native
# server passes the same ones, in test-native-xfs.sh).
source "${srcdir:-.}/fs/functions.sh"
source "${srcdir:-.}/fs/plugin-functions.sh"
SERVER_KIND=plugin
source "${srcdir:-.}/fs/serve-xfs-cases.sh"
finish
