"""Real models through the core's numerics (SPEC §6): all-MiniLM-L6-v2 on the project's own numpy
forward pass, with every matrix product on bit patterns, and energy per inference from the operand
streams the core sees."""
