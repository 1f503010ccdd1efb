// Must NOT compile: a PostgreSQL server header before a header of common/.
extern "C" {
#include "postgres.h"
}

#include "common/service_name.hpp"
