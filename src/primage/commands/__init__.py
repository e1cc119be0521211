"""Sub-commands of `primage`, one module each."""
