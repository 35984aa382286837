// DynLib (see dynlib.hpp).
#include "util/dynlib.hpp"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>

#include "util/strings.hpp"

namespace util {

Status DynLib::load() {
    std::call_once(once_, [this] {
        // RTLD_LOCAL: the library's symbols do not join the global scope, so
        // they can never interpose on berth's own (and ours never on theirs).
        void *h = dlopen(soname_, RTLD_LAZY | RTLD_LOCAL);
        if (!h) {
            error_ = cat("cannot load ", what_, ": ", dlerror());
            return;
        }
        for (const char *name : symbols_) {
            if (!dlsym(h, name)) {
                error_ = cat("cannot load ", what_, ": it has no ", name, " (too old?)");
                dlclose(h);
                return;
            }
        }
        handle_ = h;
    });
    if (!handle_) return Error::msg(error_);
    return ok();
}

void *DynLib::symbol(const char *name) {
    if (load().ok())
        if (void *p = dlsym(handle_, name)) return p;
    std::string msg = cat("berth: ", error_.empty() ? cat(what_, ": no symbol ", name) : error_, '\n');
    (void)!::write(2, msg.data(), msg.size());
    std::abort();
}

}  // namespace util
