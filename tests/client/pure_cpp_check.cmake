# common/ holds pure C++ for both halves, with no PostgreSQL or libpq header; the rule
# is enforced at compile time by common/pure_cpp.hpp (nothing of them before a common
# header) and common/pure_cpp_source.hpp (nothing of them after it, in common's own
# .cpp files). This checks, when the test build is configured, that the enforcement
# works: each file in pure_cpp/ must compile or must fail with the guard's own message.
# A wrong outcome stops the configuration, so the client suite counts it as a failure.
set(USHER_PURE_CPP_DIR ${CMAKE_CURRENT_LIST_DIR}/pure_cpp)
set(USHER_PURE_CPP_INCLUDES ${PROJECT_SOURCE_DIR}/.. ${libpq_INCLUDE_DIRS})
find_program(USHER_PG_CONFIG NAMES pg_config)
if(USHER_PG_CONFIG)
  execute_process(COMMAND ${USHER_PG_CONFIG} --includedir-server
                  OUTPUT_VARIABLE USHER_PG_SERVER_INCLUDES OUTPUT_STRIP_TRAILING_WHITESPACE)
endif()

# usher_pure_cpp_case(FILE EXPECTED [SERVER]): EXPECTED is "compiles" or the text the
# compiler's error must contain. SERVER: the file includes PostgreSQL's server headers
# (checked only where pg_config names them).
function(usher_pure_cpp_case file expected)
  set(flags -std=c++20 -Wno-register)
  if(ARGN STREQUAL "SERVER")
    if(NOT USHER_PG_SERVER_INCLUDES OR NOT EXISTS ${USHER_PG_SERVER_INCLUDES}/postgres.h)
      message(STATUS "pure C++ check ${file}: skipped (no PostgreSQL server headers)")
      return()
    endif()
    list(APPEND flags -isystem ${USHER_PG_SERVER_INCLUDES})
  endif()
  set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
  try_compile(compiled ${CMAKE_CURRENT_BINARY_DIR}/pure_cpp/${file}
    SOURCES ${USHER_PURE_CPP_DIR}/${file}
    CMAKE_FLAGS "-DINCLUDE_DIRECTORIES=${USHER_PURE_CPP_INCLUDES}"
    COMPILE_DEFINITIONS ${flags}
    OUTPUT_VARIABLE output)
  if(expected STREQUAL "compiles")
    if(NOT compiled)
      message(FATAL_ERROR "pure C++ check: ${file} must compile, and does not:\n${output}")
    endif()
  else()
    string(FIND "${output}" "${expected}" at)
    if(compiled OR at EQUAL -1)
      message(FATAL_ERROR "pure C++ check: ${file} must fail with \"${expected}\"; "
                          "compiled: ${compiled}\n${output}")
    endif()
  endif()
  message(STATUS "pure C++ check ${file}: ${expected}")
endfunction()

usher_pure_cpp_case(libpq_after_header.cpp compiles)
usher_pure_cpp_case(libpq_before.cpp "a libpq header was included before a header of common/")
usher_pure_cpp_case(libpq_after_source.cpp "poisoned")
usher_pure_cpp_case(server_after_header.cpp compiles SERVER)
usher_pure_cpp_case(server_before.cpp "a PostgreSQL header was included before a header of common/" SERVER)
usher_pure_cpp_case(server_after_source.cpp "poisoned" SERVER)
