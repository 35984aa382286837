// Placeholder: the runtime behind build::Runner lands on its own branch.
