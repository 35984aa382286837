// Placeholder: implemented on its own branch (see upper.hpp).
