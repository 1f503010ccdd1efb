// The non-template half of the error boundary: turning a caught C++ exception into
// plain data, and that plain data into an ereport once no C++ frame is left.
#include "guard.hpp"

#include <new>

namespace usher::detail {

namespace {

template <size_t N>
void copy_text(char (&to)[N], const char* from) noexcept {
  strlcpy(to, from ? from : "", N);
}

}  // namespace

void capture_current_exception(CaughtError& out) noexcept {
  out.caught = true;
  out.message[0] = out.detail[0] = out.hint[0] = '\0';
  try {
    throw;
  } catch (const PgError& e) {
    out.pg_error = e.data();
  } catch (const Error& e) {
    out.sqlstate = e.sqlstate();
    out.elevel = e.elevel();
    copy_text(out.message, e.what());
    copy_text(out.detail, e.detail().c_str());
    copy_text(out.hint, e.hint().c_str());
  } catch (const std::bad_alloc&) {
    out.sqlstate = ERRCODE_OUT_OF_MEMORY;
    copy_text(out.message, "out of memory in pg_usher");
  } catch (const std::exception& e) {
    out.sqlstate = ERRCODE_INTERNAL_ERROR;
    copy_text(out.message, e.what());
  } catch (...) {
    out.sqlstate = ERRCODE_INTERNAL_ERROR;
    copy_text(out.message, "unknown C++ exception in pg_usher");
  }
}

void report(const CaughtError& caught) {
  if (caught.pg_error != nullptr) ReThrowError(caught.pg_error);
  ereport(caught.elevel,
          (errcode(caught.sqlstate), errmsg_internal("%s", caught.message),
           caught.detail[0] ? errdetail_internal("%s", caught.detail) : 0,
           caught.hint[0] ? errhint("%s", caught.hint) : 0));
  pg_unreachable();
}

}  // namespace usher::detail
