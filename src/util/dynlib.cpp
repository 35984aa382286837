// DynLib (see dynlib.hpp).
#include "util/dynlib.hpp"

#include <dlfcn.h>
#include <unistd.h>

#include "util/strings.hpp"

namespace util {

Status DynLib::load() {
    std::call_once(once_, [this] {
        // RTLD_LOCAL: the library's symbols do not join the global scope, so
        // they can never interpose on berth's own (and ours never on theirs).
        handle_ = dlopen(soname_, RTLD_LAZY | RTLD_LOCAL);
        if (!handle_) error_ = cat("cannot load ", what_, ": ", dlerror());
    });
    if (!handle_) return Error::msg(error_);
    return ok();
}

void *DynLib::symbol(const char *name) {
    std::string err;
    if (auto st = load(); !st) {
        err = st.error().message();
    } else if (void *p = dlsym(handle_, name)) {
        return p;
    } else {
        err = cat("cannot load ", what_, ": no symbol ", name);
    }
    err = cat("berth: ", err, '\n');
    (void)!::write(2, err.data(), err.size());
    _exit(127);
}

}  // namespace util
