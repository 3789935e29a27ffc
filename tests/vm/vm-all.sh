#!/bin/sh
# nbdswap: make check's entry for the kernel end-to-end tests in a VM.
# Runs from the tests/ build directory; the harness finds the plugin and
# the workload in the build tree.
top_builddir=$(cd .. && pwd)
export top_builddir
exec "${srcdir:-.}/vm/run" all
