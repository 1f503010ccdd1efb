// Must NOT compile: libpq included after common/pure_cpp_source.hpp, the first include
// of common's own .cpp files.
#include "common/pure_cpp_source.hpp"

#include <string>

#include <libpq-fe.h>
