// Must NOT compile: a PostgreSQL server header after common/pure_cpp_source.hpp.
#include "common/pure_cpp_source.hpp"

extern "C" {
#include "postgres.h"
}
