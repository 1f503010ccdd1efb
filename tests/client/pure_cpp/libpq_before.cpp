// Must NOT compile: a libpq header before a header of common/ (common/pure_cpp.hpp).
#include <libpq-fe.h>

#include "common/service_name.hpp"
