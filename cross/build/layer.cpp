// Placeholder: implemented on its own branch (see layer.hpp).
