// Placeholder: implemented on its own branch (see binfmt.hpp).
