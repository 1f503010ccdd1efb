// Must compile: a client file includes common/ headers first, then libpq.
#include "common/prometheus_text.hpp"
#include "common/service_name.hpp"

#include <libpq-fe.h>

int usher_pure_cpp_check() { return PQlibVersion() > 0 && !usher::default_service.empty(); }
