#ifndef HORGOS_CSQLITE_SHIM_H
#define HORGOS_CSQLITE_SHIM_H
#include <sqlite3.h>

/// sqlite3_config is variadic and so not callable from Swift; these wrappers are.
static inline int horgos_sqlite3_config_memstatus(int on) {
    return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, on);
}
static inline int horgos_sqlite3_config_multithread(void) {
    return sqlite3_config(SQLITE_CONFIG_MULTITHREAD);
}
/// SQLITE_TRANSIENT is a macro cast of -1 to a function pointer; Swift cannot import it.
static inline sqlite3_destructor_type horgos_sqlite_transient(void) { return SQLITE_TRANSIENT; }
static inline sqlite3_destructor_type horgos_sqlite_static(void) { return SQLITE_STATIC; }
#endif
