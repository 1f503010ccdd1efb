#pragma once
// The usher tool's exit statuses, one place so that docs/cli.md, the commands and the
// tests agree. health follows the Nagios plugin convention (0 ok, 1 warning,
// 2 critical, 3 unknown) so it can be used as a check command unchanged; the failures
// of the other commands use BSD sysexits(3) values, which do not collide with 0-3.

namespace usher::cli::exit_code {

inline constexpr int ok = 0;
inline constexpr int health_warning = 1;
inline constexpr int health_critical = 2;
inline constexpr int health_unknown = 3;  // health could not run its checks, for any reason
// pgbouncer-config --check: the running PgBouncer differs (as diff(1) exits 1).
inline constexpr int drift = 1;

inline constexpr int usage = 64;          // EX_USAGE: unknown command / option, bad value
inline constexpr int data_error = 65;     // EX_DATAERR: the server refused a value we sent
inline constexpr int unavailable = 69;    // EX_UNAVAILABLE: cannot connect
inline constexpr int software = 70;       // EX_SOFTWARE: any other error
inline constexpr int no_permission = 77;  // EX_NOPERM: the role needs pg_monitor
inline constexpr int config = 78;         // EX_CONFIG: pg_usher not installed / not preloaded

}  // namespace usher::cli::exit_code
