// Must compile: an extension file includes common/ headers first, then PostgreSQL's.
#include "common/prometheus_text.hpp"
#include "common/service_name.hpp"

extern "C" {
#include "postgres.h"
}

int usher_pure_cpp_check() { return NAMEDATALEN - 1 == usher::max_application_name_bytes; }
