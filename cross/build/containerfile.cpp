// Placeholder: implemented on its own branch (see containerfile.hpp).
