"""Pure temporal operators: shifts and feature differences."""
