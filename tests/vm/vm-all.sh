#!/bin/sh
# nbdswap: make check's entry for the kernel end-to-end tests in a VM.
# Runs from the tests/ build directory; the harness finds the plugin, the
# nbdswap command and the workload in the build tree.  VM_SCENARIOS
# narrows the run (default: all), e.g.
#   make check TESTS=vm/vm-all.sh VM_SCENARIOS="selftest sparse"
top_builddir=$(cd .. && pwd)
export top_builddir
# shellcheck disable=SC2086 # a list of scenario names
exec "${srcdir:-.}/vm/run" ${VM_SCENARIOS:-all}
