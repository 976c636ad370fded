"""Training: jitted steps, optimizer, sharding, checkpoints, the loop."""
