// Placeholder: implemented on its own branch (see agent.hpp).
