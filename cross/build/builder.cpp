// Placeholder: implemented on its own branch (see builder.hpp).
