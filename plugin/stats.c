/* nbdswap: the process's counters (see include/stats.h). */
#include <config.h>

#include "stats.h"

struct stats stats;
