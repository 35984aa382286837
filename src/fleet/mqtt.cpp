// Placeholder: implemented on its own branch (see mqtt.hpp).
